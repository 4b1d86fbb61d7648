#!/usr/bin/env bash
# Bounded fuzzing of every target: `bash fuzz/smoke.sh [SECONDS_PER_TARGET]` (default 20).
# Uses the stable toolchain (RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z flags) and no sanitizer,
# so it runs on the machine's one toolchain; a crash or panic fails the run.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build --sanitizer none --release >/dev/null
for t in $targets; do
  mkdir -p "corpus/$t"
  echo "fuzz $t for ${secs}s"
  cargo fuzz run --sanitizer none --release "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 \
    | grep -E '^(#[0-9]+ *(DONE|INITED)|==|.*(panicked|ERROR|SUMMARY))' || true
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz target $t FAILED"; exit 1; }
done
echo "fuzz: all $(echo "$targets" | wc -w) targets ran ${secs}s each without a crash"
