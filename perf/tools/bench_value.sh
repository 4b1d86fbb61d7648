#!/usr/bin/env bash
# Runs one `harness = false` bench of the dataplane crate and prints ONE number: the `median=`
# of the first `BENCH` line that contains every MATCH word (e.g. `backends=10 size=65537`).
# Bench arguments go after `--`. The bench must already be built (perf/run.sh builds it with
# `cargo bench --no-run`), so cargo only checks freshness here.
# usage: bench_value.sh BENCH 'MATCH...' [-- BENCH-ARGS...]
#   e.g. bench_value.sh maglev_build 'backends=10 size=65537' -- --cases 10:65537 --samples 9
set -euo pipefail
bench=$1; match=$2; shift 2
[ "${1:-}" = "--" ] && shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
out=$(cd "$ROOT" && cargo bench -q -p dataplane --bench "$bench" -- "$@")
printf '%s\n' "$out" | awk -v m="$match" '
  BEGIN { n = split(m, want, " ") }
  /^BENCH / { ok = 1; for (i = 1; i <= n; i++) if (index(" " $0 " ", " " want[i] " ") == 0) ok = 0
              if (ok) { for (i = 1; i <= NF; i++) if ($i ~ /^median=/) { print substr($i, 8); found = 1; exit } } }
  END { if (!found) { print "error: no BENCH line with " m > "/dev/stderr"; exit 1 } }'
