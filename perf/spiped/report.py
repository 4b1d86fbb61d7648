#!/usr/bin/env python3
"""Turns bench.sh's raw measurements into the Markdown table and the JSON record.

usage: report.py RAW.jsonl META.json OUT.md OUT.json
RAW.jsonl: one JSON object per measurement: {"path", "metric", "value", "busy"}
           metric is "mbps" (one stream), "conns" (sequential conn/s) or "kib" (KiB per idle
           connection pair, both daemons together).
META.json: run conditions (date, commit, quick flag, sizes, calibration before/after).
Prints the Markdown to stdout as well.
"""
import json
import statistics
import sys

raw_path, meta_path, out_md, out_json = sys.argv[1:5]
meta = json.load(open(meta_path))
rows = [json.loads(l) for l in open(raw_path) if l.strip()]

PATHS = [
    ("ours", "ours, native (X25519 PFS)", "debian"),
    ("ours-f", "ours, native -f", "debian-f"),
    ("ours-spiped1", "ours, --protocol spiped1 (PFS)", "debian"),
    ("debian", "Debian spiped 1.6.2 (PFS)", None),
    ("debian-f", "Debian spiped 1.6.2 -f", None),
    ("stunnel", "stunnel4 TLS 1.3", None),
    ("socat2", "2 socat relays (no crypto)", None),
    ("tcp", "plain TCP", None),
]


def stats(path, metric):
    v = [r["value"] for r in rows if r["path"] == path and r["metric"] == metric and r["value"] is not None]
    if not v:
        return None
    busy = sum(1 for r in rows if r["path"] == path and r["metric"] == metric and r.get("busy"))
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v), "busy_runs": busy}


def fmt(s, digits=0):
    if s is None:
        return "-"
    f = "%%.%df" % digits
    out = f % s["median"]
    if s["n"] > 1:
        out += " (" + f % s["min"] + "-" + f % s["max"] + ")"
    if s["busy_runs"]:
        out += " *"
    return out


def ratio(a, b):
    if a is None or b is None or not b["median"]:
        return None
    return a["median"] / b["median"]


def fr(x):
    return "-" if x is None else "%.2fx" % x


result = {"meta": meta, "paths": {}}
for key, label, deb in PATHS:
    result["paths"][key] = {
        "label": label,
        "mbps": stats(key, "mbps"),
        "conns_per_s": stats(key, "conns"),
        "kib_per_conn": stats(key, "kib"),
    }

S = result["paths"]
lines = []
lines.append("# spiped benchmark, %s" % meta["date"])
lines.append("")
lines.append("Commit `%s`; %s; one stream of %s; connection rate over %s s per run; %d runs per cell "
             "(median, min-max in brackets); idle memory with %d connections."
             % (meta["commit"], "QUICK smoke run" if meta["quick"] else "full run", meta["stream_bytes_h"],
                meta["conn_secs"], meta["runs"], meta["idle_conns"]))
lines.append("Calibration spin: %.3f s before, %.3f s after (%s). `*` = at least one run started "
             "while the CPUs were not idle." % (meta["calib_before"], meta["calib_after"],
                                               "SLOW PERIOD: treat with care" if meta["slow_period"] else "stable"))
lines.append("")
lines.append("| path | MB/s (1 stream) | conn/s (sequential) | KiB per idle conn pair | MB/s vs Debian | conn/s vs Debian | MB/s vs stunnel | conn/s vs stunnel | MB/s vs 2 socat |")
lines.append("|---|---|---|---|---|---|---|---|---|")
for key, label, deb in PATHS:
    p = S[key]
    d = S[deb] if deb else None
    lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        label, fmt(p["mbps"]), fmt(p["conns_per_s"]), fmt(p["kib_per_conn"], 1),
        fr(ratio(p["mbps"], d["mbps"])) if d else "-",
        fr(ratio(p["conns_per_s"], d["conns_per_s"])) if d else "-",
        fr(ratio(p["mbps"], S["stunnel"]["mbps"])),
        fr(ratio(p["conns_per_s"], S["stunnel"]["conns_per_s"])),
        fr(ratio(p["mbps"], S["socat2"]["mbps"]))))

targets = [
    ("single stream >= 0.85x two socat relays", ratio(S["ours"]["mbps"], S["socat2"]["mbps"]), 0.85),
    ("single stream >= 1x stunnel4", ratio(S["ours"]["mbps"], S["stunnel"]["mbps"]), 1.0),
    ("conn/s with PFS >= 5x Debian spiped (PFS)", ratio(S["ours"]["conns_per_s"], S["debian"]["conns_per_s"]), 5.0),
    ("compat mode MB/s >= Debian spiped", ratio(S["ours-spiped1"]["mbps"], S["debian"]["mbps"]), 1.0),
    ("compat mode conn/s >= Debian spiped", ratio(S["ours-spiped1"]["conns_per_s"], S["debian"]["conns_per_s"]), 1.0),
]
kib = S["ours"]["kib_per_conn"]
lines.append("")
lines.append("| target | measured | met? |")
lines.append("|---|---|---|")
result["targets"] = []
for name, value, need in targets:
    ok = value is not None and value >= need
    result["targets"].append({"target": name, "ratio": value, "need": need, "met": ok})
    lines.append("| %s | %s | %s |" % (name, fr(value), "yes" if ok else "NO"))
ok = kib is not None and kib["median"] <= 100
result["targets"].append({"target": "<= 100 KiB per idle connection pair", "kib": kib and kib["median"], "need": 100, "met": ok})
lines.append("| <= 100 KiB per idle connection pair (native) | %s | %s |" % (fmt(kib, 1), "yes" if ok else "NO"))
lines.append("")
md = "\n".join(lines) + "\n"
open(out_md, "w").write(md)
json.dump(result, open(out_json, "w"), indent=2)
sys.stdout.write(md)
