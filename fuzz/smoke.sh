#!/usr/bin/env bash
# Bounded fuzzing of every target: `bash fuzz/smoke.sh [SECONDS_PER_TARGET]` (default 20).
# Uses the stable toolchain (RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z flags) and no sanitizer,
# so it runs on the machine's one toolchain; a crash, panic or timeout in any target fails the run.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build --sanitizer none --release >/dev/null
mkdir -p logs
n=0
for t in $targets; do
  mkdir -p "corpus/$t"
  if cargo fuzz run --sanitizer none --release "$t" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      >"logs/$t.log" 2>&1; then
    echo "fuzz $t: $(grep -E '^#[0-9]+[[:space:]]+DONE' "logs/$t.log" | tail -1 | awk '{print $1" runs"}') in ${secs}s, no crash"
    n=$((n + 1))
  else
    echo "fuzz $t FAILED:"; tail -30 "logs/$t.log"; exit 1
  fi
done
echo "fuzz: all $n targets ran ${secs}s each without a crash"
