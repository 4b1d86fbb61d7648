#!/usr/bin/env python3
"""Summarises perf/run.sh's raw measurements into the results JSON (medians, min-max, ratios
to anchors, slow-period flags) and merges in perf/spiped/bench.sh's own JSON.

usage: summarize.py RAW.tsv OUT.json QUICK(0|1) DURATION_S [SPIPED.json]
RAW.tsv rows: group, name, unit, anchor name, note, value, calibration before, after.
"""
import json, statistics, subprocess, sys, datetime, platform
raw, out, quick, dur = sys.argv[1], sys.argv[2], sys.argv[3] == "1", float(sys.argv[4])
spj = sys.argv[5] if len(sys.argv) > 5 else ""
cases, order, cal = {}, [], []
for line in open(raw):
    g, n, u, a, note, v, c0, c1 = (line.rstrip("\n").split("\t") + [""] * 8)[:8]
    key = (g, n)
    if key not in cases:
        cases[key] = {"group": g, "name": n, "unit": u, "anchor": a or None, "note": note, "runs": [], "cal": []}
        order.append(key)
    if v:
        cases[key]["runs"].append(float(v))
    for c in (c0, c1):
        if c:
            cases[key]["cal"].append(float(c)); cal.append(float(c))
# A case is "slow" when a calibration spin around it took > 1.3x the run's median spin. (The
# fastest spin is no reference: on this VM an idle machine's spins already vary 0.57-1.07 s.)
ref = statistics.median(cal) if cal else 0
for c in cases.values():
    r = c["runs"]
    c["median"] = statistics.median(r) if r else None
    c["min"], c["max"] = (min(r), max(r)) if r else (None, None)
    c["slow"] = bool(ref and max(c["cal"], default=0) > 1.3 * ref)
    c["calibration_s"] = c.pop("cal")
for c in cases.values():
    a = cases.get((c["group"], c["anchor"])) if c["anchor"] else None
    c["ratio"] = (c["median"] / a["median"]) if a and a["median"] and c["median"] is not None else None
# spiped cells come from perf/spiped/bench.sh's own JSON (it runs its own 5 repetitions, idle
# waits and calibration); the anchor of every spiped row is Debian's spiped in the same run.
if spj:
    sp = json.load(open(spj))
    slow = bool(sp["meta"].get("slow_period"))
    for metric, group, unit in (("mbps", "spiped: one stream", "MB/s"),
                                ("conns_per_s", "spiped: sequential connections", "conn/s"),
                                ("kib_per_conn", "spiped: memory per idle connection pair", "KiB")):
        base = sp["paths"].get("debian", {}).get(metric, {}).get("median")
        for key, path in sp["paths"].items():
            m = path.get(metric)
            if not m or m.get("median") is None:
                continue
            anchor = None if key == "debian" else "Debian spiped (PFS)"
            cases[(group, path["label"])] = {
                "group": group, "name": "Debian spiped (PFS)" if key == "debian" else path["label"],
                "unit": unit, "anchor": anchor, "note": f"n={m.get('n')}", "runs": [],
                "median": m["median"], "min": m.get("min"), "max": m.get("max"), "slow": slow,
                "calibration_s": [sp["meta"].get("calib_before"), sp["meta"].get("calib_after")],
                "ratio": (m["median"] / base) if base and key != "debian" else None}
            order.append((group, path["label"]))
def sh(cmd):
    try: return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return "?"
host = {"cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(), "cores": sh("nproc"),
        "mem": sh("free -g | awk '/Mem:/{print $2\" GiB\"}'"), "kernel": platform.release(),
        "dpdk": sh("pkg-config --modversion libdpdk")}
res = {"date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), "host": host, "quick": quick,
       "commit": sh("git rev-parse --short HEAD") + (" (modified)" if sh("git status --porcelain --untracked-files=no -- . ':!perf/results'") else ""),
       "duration_s": dur, "calibration_median_s": ref, "cases": [cases[k] for k in order]}
json.dump(res, open(out, "w"), indent=1)
print(out)
