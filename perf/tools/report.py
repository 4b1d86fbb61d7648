#!/usr/bin/env python3
"""Turn a perf results JSON (written by perf/run.sh) into a Markdown table and PNG charts.

usage: report.py RESULTS.json            -> RESULTS.md and RESULTS-<chart>.png beside it

JSON shape: {"date", "host": {...}, "duration_s", "quick": bool,
             "cases": [{"group", "name", "unit", "runs": [..], "median", "min", "max",
                        "anchor": name or null, "ratio": float or null, "slow": bool, "note"}]}
A case's ratio is its median over the median of its anchor case in the same run.
Charts need matplotlib (Debian's python3-matplotlib); without it only the Markdown is written.
"""
import json
import os
import sys


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


# The project's speed targets (issue #4), checked against this run's cases:
# (what, group prefix, case name, "ratio" or "median" or "added" (case median - anchor median), op, limit).
TARGETS = [
    ("forwarder 1K flows >= 0.8x testpmd 5tswap (memif)", "dataplane pktgen", "dataplane tunnel, 1K flows", "ratio", ">=", 0.8),
    ("forwarder 1K SYN flows >= 0.8x testpmd 5tswap (pcap)", "forwarder, net_pcap", "dataplane tunnel, 1K SYN flows", "ratio", ">=", 0.8),
    ("forwarder 1M flows >= 0.6x testpmd 5tswap (memif)", "dataplane pktgen", "dataplane tunnel, 1M flows", "ratio", ">=", 0.6),
    (">= 5 M new flows/s per core, table at capacity", "connection table", "new flows/s (hash + miss + evicting insert)", "median", ">=", 5.0),
    ("<= 64 B of table memory per tracked flow", "connection table", "table memory per tracked flow", "median", "<=", 64.0),
    ("p99 added latency < 20 us at half the max rate (forwarder p99 - testpmd p99)", "round-trip latency", "dataplane tunnel, p99", "added", "<", 20.0),
]


def targets(res):
    by = {(c["group"], c["name"]): c for c in res["cases"]}
    rows = []
    for what, gprefix, name, kind, op, limit in TARGETS:
        c = next((v for (g, n), v in by.items() if g.startswith(gprefix) and n == name), None)
        val = None
        if c is not None and c.get("median") is not None:
            if kind == "ratio":
                val = c.get("ratio")
            elif kind == "median":
                val = c["median"]
            else:
                a = by.get((c["group"], c.get("anchor")))
                val = c["median"] - a["median"] if a and a.get("median") is not None else None
        if val is None:
            met = "not measured"
        else:
            ok = {">=": val >= limit, "<=": val <= limit, "<": val < limit}[op]
            met = ("yes" if ok else "NO") + (" (slow period)" if c.get("slow") else "")
        rows.append(f"| {what} | {fmt(val)} | {met} |")
    return ["## Targets", "", "| target | measured | met? |", "|---|---|---|"] + rows + [""]


def pcap_budget(res):
    """Per-packet time of the pcap replay cases, and what 0.8x testpmd 5tswap leaves the
    forwarder for its own work: 1000 / Mpps is ns per packet, and testpmd io (receive and send,
    no packet touched) is the cost of the DPDK I/O alone on this port. All from this run."""
    g = next((c["group"] for c in res["cases"] if c["group"].startswith("forwarder, net_pcap")), None)
    by = {c["name"]: c.get("median") for c in res["cases"] if c["group"] == g}
    alone = {c["name"]: c.get("median") for c in res["cases"] if c["group"].startswith("pipeline alone")}
    pipe, floor, refill = (alone.get(n) for n in ("pipeline, 1K SYN flows", "floor, 1K SYN flows", "refill alone, 1K SYN flows"))
    io, swap, csum, fwd = (by.get(n) for n in ("testpmd io, 1K SYN flows", "testpmd 5tswap, 1K SYN flows",
                                               "testpmd csum, 1K SYN flows", "dataplane tunnel, 1K SYN flows"))
    if not (io and swap and fwd):
        return []
    ns = lambda mpps: 1000.0 / mpps
    budget = ns(0.8 * swap) - ns(io)
    rows = [("testpmd io: DPDK receive + send alone", ns(io)),
            ("testpmd 5tswap: the anchor", ns(swap)),
            ("0.8x testpmd 5tswap: the target", ns(0.8 * swap)),
            ("left for the forwarder's own work at the target (target - io)", budget)]
    if csum:
        rows.append(("testpmd csum: parses the headers, recomputes the checksums in software", ns(csum)))
    rows += [("forwarder, full pipeline", ns(fwd)),
             ("the forwarder's own work (forwarder - io)", ns(fwd) - ns(io))]
    if pipe:
        rows.append(("pipeline alone, no I/O (benches/pipeline.rs; includes refilling each frame, as the PMD's copy)", pipe))
    if pipe and refill:
        rows.append(("the pipeline's work (pipeline - refill alone)", pipe - refill))
    if floor and refill:
        rows.append(("the floor's work: the least this traffic needs, one straight-line path (benches/floor.rs; floor - refill alone)", floor - refill))
    return (["## pcap replay, 1K SYN flows: time per packet", "",
             "Derived from the medians above (ns per packet = 1000 / Mpps). The target leaves the "
             "forwarder the time between testpmd io and 0.8x testpmd 5tswap for everything it does "
             "beyond receiving and sending a frame; the floor's work is what the least work a forwarder "
             "must do for this traffic costs on this machine.", "",
             "| what | ns per packet |", "|---|---|"]
            + [f"| {w} | {fmt(v)} |" for w, v in rows] + [""])


def markdown(res):
    h = res["host"]
    out = [f"# Benchmark results {res['date']}", "",
           f"Hardware: {h.get('cpu', '?')}, {h.get('cores', '?')} cores, {h.get('mem', '?')}; "
           f"kernel {h.get('kernel', '?')}; DPDK {h.get('dpdk', '?')}. "
           f"{'Quick run (1 run per case).' if res.get('quick') else 'Median of 5 runs per case, min-max in brackets.'} "
           f"Run took {res.get('duration_s', 0):.0f} s."
           + (f" Commit `{res['commit']}`." if res.get("commit") else ""), "",
           "Calibration: a fixed spin loop is timed before and after every case; a case whose "
           "calibration was > 1.3x the run's median is flagged *slow* (the machine was in a slow period).", ""]
    groups = []
    for c in res["cases"]:
        if c["group"] not in groups:
            groups.append(c["group"])
    for g in groups:
        out += [f"## {g}", "", "| case | median | min-max | unit | vs anchor | ratio | note |",
                "|---|---|---|---|---|---|---|"]
        for c in res["cases"]:
            if c["group"] != g:
                continue
            rng = f"{fmt(c['min'])}-{fmt(c['max'])}" if c.get("min") is not None else "-"
            note = (c.get("note") or "") + (" **slow period**" if c.get("slow") else "")
            out.append(f"| {c['name']} | {fmt(c['median'])} | {rng} | {c['unit']} | "
                       f"{c.get('anchor') or '-'} | {fmt(c.get('ratio'))} | {note.strip()} |")
        out.append("")
    return "\n".join(out + targets(res) + pcap_budget(res))


def charts(res, base):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: matplotlib missing, no PNG charts", file=sys.stderr)
        return []
    made = []
    groups = {}
    for c in res["cases"]:
        if c.get("median") is not None:
            groups.setdefault(c["group"], []).append(c)
    for g, cs in groups.items():
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(cs)), 4))
        names = [c["name"] for c in cs]
        med = [c["median"] for c in cs]
        lo = [c["median"] - (c.get("min") if c.get("min") is not None else c["median"]) for c in cs]
        hi = [(c.get("max") if c.get("max") is not None else c["median"]) - c["median"] for c in cs]
        ax.bar(range(len(cs)), med, yerr=[lo, hi], capsize=3,
               color=["#c44" if c.get("anchor") is None else "#48c" for c in cs])
        ax.set_xticks(range(len(cs)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(cs[0]["unit"])
        ax.set_title(f"{g} (red: anchors)")
        fig.tight_layout()
        slug = "".join(ch if ch.isalnum() else "-" for ch in g.lower()).strip("-")
        path = f"{base}-{slug}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    with open(path) as f:
        res = json.load(f)
    base = os.path.splitext(path)[0]
    with open(base + ".md", "w") as f:
        f.write(markdown(res) + "\n")
    for p in charts(res, base):
        print(p)
    print(base + ".md")


if __name__ == "__main__":
    main()
