#!/usr/bin/env python3
"""Reference Maglev disruption measurement, the method of research l4lb.md §2.

Method (the research's "ad-hoc Python"): backends are named be0..be{N-1} with unit weights, the
table size M is prime, each backend's permutation is offset = h1(name) mod M and
skip = h2(name) mod (M-1) + 1 with h1, h2 = 64-bit blake2b digests under two different keys,
and the table is populated as in the Maglev paper (NSDI'16, §3.4, Pseudocode 1): backends take
turns in name order, each claiming the next free slot of its own permutation.

"Unrelated churn" after removing backend r = slots whose owner changed although that owner was
not r, as a share of M. The research table printed one removal per (M, N); this script removes
EVERY backend in turn (or a deterministic sample of them with --sample) and prints min, mean and
max, so that the figure can be read as a distribution, not a single draw.

Usage: python3 dataplane/tests/maglev_reference.py M N [--sample K]
Runtime: pure Python, ~0.2 s of CPU per table at M=65537 (N=100 over all removals: ~1 minute,
N=1000: ~20 minutes on a loaded 2-core machine), several seconds per table at M=655373 (use
--sample 100 there). Results are quoted in dataplane/tests/maglev.rs.
"""
import hashlib
import statistics
import sys


def h(key: bytes, name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8, key=key).digest(), "little")


def populate(names, m):
    perms = [(h(b"offset", n) % m, h(b"skip", n) % (m - 1) + 1) for n in names]
    nxt = [0] * len(names)
    table = [-1] * m
    filled = 0
    while True:
        for i, (off, skip) in enumerate(perms):
            c = (off + nxt[i] * skip) % m
            while table[c] >= 0:
                nxt[i] += 1
                c = (off + nxt[i] * skip) % m
            table[c] = i
            nxt[i] += 1
            filled += 1
            if filled == m:
                return table


def main():
    m, n = int(sys.argv[1]), int(sys.argv[2])
    sample = n
    if "--sample" in sys.argv:
        sample = int(sys.argv[sys.argv.index("--sample") + 1])
    names = [f"be{i}" for i in range(n)]
    before = populate(names, m)
    # A deterministic spread of removed indices: all of them, or `sample` evenly spaced ones.
    removed_set = sorted({(k * n) // sample for k in range(sample)})
    churn = []
    for r in removed_set:
        rest = [i for i in range(n) if i != r]
        after_local = populate([names[i] for i in rest], m)
        after = [rest[x] for x in after_local]
        moved = sum(1 for x, y in zip(before, after) if x != r and x != y)
        churn.append(moved / m)
    print(
        f"M={m} N={n} removals={len(churn)}: unrelated churn min {min(churn) * 100:.3f} % "
        f"mean {statistics.mean(churn) * 100:.3f} % max {max(churn) * 100:.3f} % "
        f"stdev {statistics.pstdev(churn) * 100:.3f} %; removing be{n - 1} alone: "
        f"{churn[-1] * 100:.3f} %" if removed_set[-1] == n - 1 else
        f"M={m} N={n} removals={len(churn)}: unrelated churn min {min(churn) * 100:.3f} % "
        f"mean {statistics.mean(churn) * 100:.3f} % max {max(churn) * 100:.3f} % "
        f"stdev {statistics.pstdev(churn) * 100:.3f} %"
    )


if __name__ == "__main__":
    main()
