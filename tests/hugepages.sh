#!/usr/bin/env bash
# Reserve N 2 MiB hugepages and make sure hugetlbfs is mounted. Idempotent.
set -eu
n=${1:-512}
f=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
[ -w "$f" ] || { echo "no hugepage control at $f" >&2; exit 1; }
cur=$(cat "$f")
if [ "$cur" -lt "$n" ]; then echo "$n" > "$f"; fi
got=$(cat "$f")
mountpoint -q /dev/hugepages || { mkdir -p /dev/hugepages; mount -t hugetlbfs nodev /dev/hugepages; }
echo "hugepages: $got x 2 MiB reserved, hugetlbfs on /dev/hugepages"
[ "$got" -ge 64 ]
