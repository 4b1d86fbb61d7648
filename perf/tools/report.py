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


def markdown(res):
    h = res["host"]
    out = [f"# Benchmark results {res['date']}", "",
           f"Hardware: {h.get('cpu', '?')}, {h.get('cores', '?')} cores, {h.get('mem', '?')}; "
           f"kernel {h.get('kernel', '?')}; DPDK {h.get('dpdk', '?')}. "
           f"{'Quick run (1 run per case).' if res.get('quick') else 'Median of 5 runs per case, min-max in brackets.'} "
           f"Run took {res.get('duration_s', 0):.0f} s.", "",
           "Calibration: a fixed spin loop is timed before and after every case; a case whose "
           "calibration was > 1.3x the run's fastest is flagged *slow* (the machine was in a slow period).", ""]
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
    return "\n".join(out)


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
