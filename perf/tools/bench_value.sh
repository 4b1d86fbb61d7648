#!/usr/bin/env bash
# Runs one `harness = false` bench of the dataplane crate and prints ONE number: the `median=`
# of the first `BENCH` line that contains every MATCH word (e.g. `backends=10 size=65537`).
# Bench arguments go after `--`. The bench must already be built (perf/run.sh builds it with
# `cargo bench --no-run`), so cargo only checks freshness here.
# usage: bench_value.sh BENCH 'MATCH...' [--extra FILE KEY 'MATCH...'] [-- BENCH-ARGS...]
#   e.g. bench_value.sh maglev_build 'backends=10 size=65537' -- --cases 10:65537 --samples 9
set -euo pipefail
bench=$1; match=$2; shift 2
# --extra FILE KEY 'MATCH...': also append KEY=<median of the line with those words> to FILE
# (perf/run.sh's EXTRAS: a second number of the same bench process).
extra=; xkey=; xmatch=
if [ "${1:-}" = "--extra" ]; then extra=$2; xkey=$3; xmatch=$4; shift 4; fi
[ "${1:-}" = "--" ] && shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
out=$(cd "$ROOT" && cargo bench -q -p dataplane --bench "$bench" -- "$@")
median_of() {
  printf '%s\n' "$out" | awk -v m="$1" '
    BEGIN { n = split(m, want, " ") }
    /^BENCH / { ok = 1; for (i = 1; i <= n; i++) if (index(" " $0 " ", " " want[i] " ") == 0) ok = 0
                if (ok) { for (i = 1; i <= NF; i++) if ($i ~ /^median=/) { print substr($i, 8); found = 1; exit } } }
    END { if (!found) { print "error: no BENCH line with " m > "/dev/stderr"; exit 1 } }'
}
if [ -n "$extra" ]; then
  x=$(median_of "$xmatch")
  echo "$xkey=$x" >>"$extra"
fi
median_of "$match"
