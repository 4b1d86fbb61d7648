#!/usr/bin/env bash
# The benchmark suite: every speed claim of the project, measured against its anchor in the same
# run. Run as root on the project machine (hugepages, DPDK):
#   bash perf/run.sh           # full: 5 runs per case, medians and min-max
#   bash perf/run.sh --quick   # 1 run per case, shorter windows (smoke; < 10 minutes)
# Writes perf/results/<UTC date>.json, .md and .png charts (perf/tools/report.py).
# See perf/README.md for what each case means.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    *) echo "usage: perf/run.sh [--quick]" >&2; exit 2 ;;
  esac
done
RUNS=$([ $QUICK -eq 1 ] && echo 1 || echo 5)
WINDOW=$([ $QUICK -eq 1 ] && echo 6 || echo 10)   # seconds per DPDK rate sample run
DATE=$(date -u +%Y-%m-%d)
OUT_DIR=$ROOT/perf/results
WORK=$ROOT/perf/work
mkdir -p "$OUT_DIR" "$WORK"
RAW=$WORK/raw.tsv
: >"$RAW"
T0=$SECONDS

if [ "${PERF_NO_DEPS:-0}" != 1 ]; then
  # System packages the suite needs (DPDK tools, peers for spiped, chart rendering).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    dpdk python3-matplotlib spiped stunnel4 socat >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
         --no-install-recommends dpdk python3-matplotlib spiped stunnel4 socat >/dev/null; }
fi
bash "$ROOT/tests/hugepages.sh" 512 >/dev/null
echo "== build (release)"
cargo build --release --workspace --quiet
cargo bench --no-run --quiet -p dataplane --bench maglev_build --bench conntrack --bench pipeline --bench floor 2>/dev/null

# A fixed amount of CPU work; its duration shows slow periods of the (shared, noisy) machine.
calibrate() {
  local t0 t1
  t0=$(date +%s.%N)
  awk 'BEGIN { x = 0; for (i = 0; i < 20000000; i++) x += i; }'
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

# run_case GROUP NAME UNIT ANCHOR NOTE -- COMMAND...   (COMMAND prints one number per run)
# Cases measured by the same runs: set EXTRAS=("GROUP|KEY|NAME|UNIT|ANCHOR|NOTE" ...) and have
# COMMAND write KEY=VALUE lines to $EXTRA (perf/tools/pktgen_rate.sh --extra "$EXTRA"); each
# becomes a case of its own with the same calibration. run_case clears EXTRAS when done.
EXTRA=$WORK/extra.kv
EXTRAS=()
run_case() {
  local group=$1 name=$2 unit=$3 anchor=$4 note=$5
  shift 6
  local i v c0 c1 e g k n u a t x
  for ((i = 1; i <= RUNS; i++)); do
    rm -f "$EXTRA"
    c0=$(calibrate)
    if ! v=$("$@" 2>"$WORK/last.err"); then
      echo "   $name run $i FAILED: $(tail -3 "$WORK/last.err" | tr '\n' ' ')"
      v=""
    fi
    c1=$(calibrate)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$group" "$name" "$unit" "$anchor" "$note" "$v" "$c0" "$c1" >>"$RAW"
    echo "   $name run $i: ${v:-failed} $unit (calibration ${c0}s / ${c1}s)"
    for e in "${EXTRAS[@]}"; do
      IFS='|' read -r g k n u a t <<<"$e"
      x=""
      [ -n "$v" ] && [ -f "$EXTRA" ] && x=$(awk -F= -v k="$k" '$1 == k { printf "%.3f", $2 }' "$EXTRA")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$g" "$n" "$u" "$a" "$t" "$x" "$c0" "$c1" >>"$RAW"
      echo "   $n run $i: ${x:-failed} $u"
    done
  done
  EXTRAS=()
}

# Median of the successful runs of case NAME so far (empty if none).
median_of() {
  awk -F'\t' -v n="$1" '$2 == n && $6 != "" { print $6 }' "$RAW" | sort -g \
    | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# ---------------------------------------------------------------- forwarder on pcap replay
PCAP_GROUP="forwarder, net_pcap replay, one core (Mpps)"
python3 "$ROOT/perf/tools/mkpcap.py" "$WORK/syn-1k.pcap" --flows 1024 --mix syn >/dev/null
# net_pcap with infinite_rx holds the whole capture in mbufs of the port's pool: the forwarder's
# pool for one port and one lcore has 4095, so its captures stay at 2048 frames (one per flow).
python3 "$ROOT/perf/tools/mkpcap.py" "$WORK/data-2k.pcap" --flows 2048 --mix data >/dev/null
echo "== $PCAP_GROUP"
for m in io 5tswap csum; do
  run_case "$PCAP_GROUP" "testpmd $m, 1K SYN flows" Mpps "" "anchor" -- \
    bash "$ROOT/perf/tools/testpmd_rate.sh" "$m" "$WINDOW" \
    "net_pcap0,rx_pcap=$WORK/syn-1k.pcap,infinite_rx=1" "net_null1,no-rx=1"
done
run_case "$PCAP_GROUP" "testpmd 5tswap, 2K data flows" Mpps "" "anchor" -- \
  bash "$ROOT/perf/tools/testpmd_rate.sh" 5tswap "$WINDOW" \
  "net_pcap0,rx_pcap=$WORK/data-2k.pcap,infinite_rx=1" "net_null1,no-rx=1"
if [ -x "$ROOT/perf/tools/dataplane_rate.sh" ]; then
  run_case "$PCAP_GROUP" "dataplane tunnel, 1K SYN flows" Mpps "testpmd 5tswap, 1K SYN flows" "full pipeline, IPIP" -- \
    bash "$ROOT/perf/tools/dataplane_rate.sh" "$WINDOW" "$WORK/syn-1k.pcap"
  run_case "$PCAP_GROUP" "dataplane tunnel, 2K data flows" Mpps "testpmd 5tswap, 2K data flows" "full pipeline, IPIP, Maglev (no entries)" -- \
    bash "$ROOT/perf/tools/dataplane_rate.sh" "$WINDOW" "$WORK/data-2k.pcap"
fi

# The same traffic through the pipeline alone (dataplane/benches/pipeline.rs: no EAL, no PMD, the
# frames refilled in place): what the forwarding core spends per packet between rx and tx. The
# difference to the replay cases above is the I/O's share.
PIPE_GROUP="pipeline alone, no I/O, one core (ns per packet)"
echo "== $PIPE_GROUP"
run_case "$PIPE_GROUP" "pipeline, 1K SYN flows" ns "" "same capture and config as dataplane_rate.sh" -- \
  bash "$ROOT/perf/tools/bench_value.sh" pipeline "mix=syn unit=ns_per_packet" -- --flows 1024 --mix syn --samples 5
run_case "$PIPE_GROUP" "pipeline, 2K data flows" ns "" "Maglev, no entries" -- \
  bash "$ROOT/perf/tools/bench_value.sh" pipeline "mix=data unit=ns_per_packet" -- --flows 2048 --mix data --samples 5
# The floor under it (dataplane/benches/floor.rs): the least work the same traffic needs, as one
# straight-line path with the config's constants folded in; and, from the same bench process,
# the two benches' refill alone.
EXTRAS=("$PIPE_GROUP|refill_ns|refill alone, 1K SYN flows|ns||both benches' frame refill, included in their numbers")
run_case "$PIPE_GROUP" "floor, 1K SYN flows" ns "" "least work for this traffic, straight line, not a forwarder" -- \
  bash "$ROOT/perf/tools/bench_value.sh" floor "part=all mix=syn" --extra "$EXTRA" refill_ns "part=refill mix=syn" \
  -- --flows 1024 --mix syn --samples 5

# ---------------------------------------------------------------- control plane and table (pure code)
# Maglev rebuild: the control thread's time from a config/health change to a new table
# (dataplane/benches/maglev_build.rs; median of SAMPLES builds per run).
SAMPLES=$([ $QUICK -eq 1 ] && echo 5 || echo 15)
MAGLEV_GROUP="Maglev table rebuild, control thread (ms)"
echo "== $MAGLEV_GROUP"
for c in 10:65537 100:65537 1000:65537 1000:655373; do
  run_case "$MAGLEV_GROUP" "${c%:*} backends, M = ${c#*:}" ms "" "median of $SAMPLES builds" -- \
    bash "$ROOT/perf/tools/bench_value.sh" maglev_build "backends=${c%:*} size=${c#*:}" -- --cases "$c" --samples "$SAMPLES"
done
# Connection table at capacity (1 M slots), all new SYN flows, each evicting the oldest SYN
# entry (the production policy): hash + lookup miss + insert per flow (benches/conntrack.rs).
CT_GROUP="connection table, one core, table at capacity"
echo "== $CT_GROUP"
run_case "$CT_GROUP" "new flows/s (hash + miss + evicting insert)" "Mflows/s" "" "1 M slots, target >= 5" -- \
  bash "$ROOT/perf/tools/bench_value.sh" conntrack "case=new_flows_at_capacity" -- --capacity 1048576 --samples 5
run_case "$CT_GROUP" "table memory per tracked flow" "B" "" "memory_bytes / capacity, target <= 64" -- \
  bash "$ROOT/perf/tools/bench_value.sh" conntrack "case=bytes_per_flow" -- --capacity 1048576 --samples 1

# ---------------------------------------------------------------- generator -> forwarder over memif
if [ -x "$ROOT/perf/tools/pktgen_rate.sh" ]; then
  PG=$ROOT/perf/tools/pktgen_rate.sh
  MEMIF_GROUP="dataplane pktgen -> forwarder over memif, 1 core each (Mpps returned)"
  MEM_GROUP="forwarder memory, 1M flows (default mix, conntrack capacity 1M)"
  # How much CPU the two busy-polling processes actually got: 100 % each on an idle machine; far
  # less when other tenants share the cores (then the memif Mpps measure the scheduler).
  CPU_GROUP="CPU the memif runs got (% of one core, from /proc/PID/task/TID/stat)"
  # Whether the forwarder was the limit of a memif run: RX polls that found nothing per poll
  # that found frames, between two reads inside the traffic window (pktgen_rate.sh
  # fwd_idle_per_burst).
  IDLE_GROUP="forwarder empty RX polls per received burst, memif runs (0 = the forwarder was the limit)"
  idle_extra() {
    EXTRAS+=("$IDLE_GROUP|fwd_idle_per_burst|dataplane tunnel, $1 flows|polls||large: it waited for the generator, whose limit the rate then is")
  }
  cpu_extras() {
    EXTRAS=("$CPU_GROUP|fwd_cpu_pct|$1: forwarding lcore|%||busy-polls: 100 when the core is its own"
            "$CPU_GROUP|gen_cpu_pct|$1: generator|%||busy-polls: 100 when the core is its own")
  }
  echo "== $MEMIF_GROUP"
  for m in io 5tswap; do
    [ $m = 5tswap ] && cpu_extras "testpmd 5tswap, 1K flows"
    run_case "$MEMIF_GROUP" "testpmd $m, 1K flows" Mpps "" "anchor: same generator traffic" -- \
      bash "$PG" "testpmd-$m" 1000 "$WINDOW" $([ $m = 5tswap ] && echo --sample) --extra "$EXTRA"
  done
  FLOWS="1000:1K 100000:100K 1000000:1M"
  [ $QUICK -eq 1 ] || FLOWS="$FLOWS 10000000:10M"
  for f in $FLOWS; do
    [ "${f#*:}" = 1K ] && cpu_extras "dataplane tunnel, 1K flows"
    if [ "${f#*:}" = 1M ]; then
      EXTRAS=("$MEM_GROUP|rss_mib|forwarder VmRSS (peak sampled)|MiB||heap incl. the conntrack table; hugepages excluded"
              "$MEM_GROUP|hwm_mib|forwarder VmHWM|MiB||kernel's RSS high-water mark"
              "$MEM_GROUP|huge_mib|forwarder HugetlbPages|MiB||hugepage memory mapped (mbuf pool, rings): not in RSS"
              "$MEM_GROUP|pool_mib|mbuf pool from config|MiB||mbufs (from its log) x 2368 B"
              "$MEM_GROUP|table_mib|conntrack table from config|MiB||slots x 64 B, heap (in RSS)")
    fi
    idle_extra "${f#*:}"
    run_case "$MEMIF_GROUP" "dataplane tunnel, ${f#*:} flows" Mpps "testpmd 5tswap, 1K flows" "IPIP, every frame checked" -- \
      bash "$PG" dataplane "${f%:*}" "$WINDOW" $([ "${f#*:}" = 10M ] && echo --capacity 16777216) \
        $(case "${f#*:}" in 1K|1M) echo --sample ;; esac) --extra "$EXTRA"
  done
  # All-SYN flood: 10 M flows round-robin, so (table capacity 1 M) nearly every packet is a flow
  # the table does not hold: Maglev + evicting insert per packet.
  run_case "$MEMIF_GROUP" "dataplane tunnel, all-SYN flood, 10M flows" Mpps "testpmd 5tswap, 1K flows" \
    "new flows forwarded per s; table at capacity (1M)" -- \
    bash "$PG" dataplane 10000000 "$WINDOW" --mix syn=1
  # Warm vs cold table: two passes over the same flows (SYN and UDP: both create entries) against
  # a fresh forwarder; capacity 2x the flows so no flow is evicted between the passes.
  WC="1000000:1M:2097152"
  [ $QUICK -eq 1 ] || WC="$WC 10000000:10M:16777216"
  for f in $WC; do
    IFS=: read -r n label cap <<<"$f"
    EXTRAS=("$MEMIF_GROUP|later_passes_mpps|dataplane tunnel, $label flows, warm table (2nd pass)|Mpps|dataplane tunnel, $label flows, cold table (1st pass)|same run: the table holds every flow")
    run_case "$MEMIF_GROUP" "dataplane tunnel, $label flows, cold table (1st pass)" Mpps "testpmd 5tswap, 1K flows" \
      "fresh forwarder: every packet a new entry" -- \
      bash "$PG" dataplane "$n" "$WINDOW" --mix syn=1,udp=1 --passes 2 --capacity "$cap" --print first_pass_mpps --extra "$EXTRA"
  done
  # Added latency at half the maximum rate: the generator times every returned frame from the
  # TSC stamp in its payload; the rate is half this run's median of the forwarder at 1K flows
  # (1 Mpps if that case failed), the same offered load for the anchor.
  MAX=$(median_of "dataplane tunnel, 1K flows")
  RATE=$(awk -v m="${MAX:-0}" 'BEGIN { r = m > 0 ? m * 1e6 / 2 : 1e6; printf "%d", r }')
  LAT_GROUP="round-trip latency at half the forwarder's max rate, 1K flows (us)"
  echo "== $LAT_GROUP"
  LNOTE="$(awk -v r="$RATE" 'BEGIN { printf "%.3f", r / 1e6 }') Mpps offered ($([ -n "$MAX" ] && echo "half the forwarder's 1K-flow max in this run" || echo "fixed: max unknown"))"
  # No --sample here: sampling forks onto the cores under test (see pktgen_rate.sh). The generator
  # keeps its schedule's pace after a stall instead of catching up (behind_schedule counts what
  # it skipped), so the offered load stays the configured rate.
  EXTRAS=("$LAT_GROUP|p50_us|testpmd 5tswap, p50|us||anchor; $LNOTE"
          "$LAT_GROUP|p999_us|testpmd 5tswap, p99.9|us||anchor; $LNOTE"
          "$LAT_GROUP|behind_schedule|testpmd 5tswap run: generator behind schedule|packets||skipped, not sent: the generator was off its CPU longer than one burst")
  run_case "$LAT_GROUP" "testpmd 5tswap, p99" us "" "anchor; $LNOTE" -- \
    bash "$PG" testpmd-5tswap 1000 "$WINDOW" --rate "$RATE" --print p99_us --extra "$EXTRA"
  EXTRAS=("$LAT_GROUP|p50_us|dataplane tunnel, p50|us|testpmd 5tswap, p50|every frame checked; $LNOTE"
          "$LAT_GROUP|p999_us|dataplane tunnel, p99.9|us|testpmd 5tswap, p99.9|every frame checked; $LNOTE"
          "$LAT_GROUP|behind_schedule|dataplane run: generator behind schedule|packets||skipped, not sent: the generator was off its CPU longer than one burst")
  run_case "$LAT_GROUP" "dataplane tunnel, p99" us "testpmd 5tswap, p99" "every frame checked; $LNOTE" -- \
    bash "$PG" dataplane 1000 "$WINDOW" --rate "$RATE" --print p99_us --extra "$EXTRA"
fi

# ---------------------------------------------------------------- spiped
SPIPED_JSON=""
if [ -x "$ROOT/perf/spiped/bench.sh" ]; then
  echo "== spiped (perf/spiped/bench.sh)"
  if BENCH_NO_BUILD=1 bash "$ROOT/perf/spiped/bench.sh" $([ $QUICK -eq 1 ] && echo --quick) >"$WORK/spiped.out" 2>"$WORK/spiped.err"; then
    SPIPED_JSON=$(ls -t "$OUT_DIR"/spiped-*.json | head -1)
    echo "   results: $SPIPED_JSON"
  else
    echo "   spiped benchmark FAILED: $(tail -3 "$WORK/spiped.err" | tr '\n' ' ')"
  fi
fi

# ---------------------------------------------------------------- results
python3 "$ROOT/perf/tools/summarize.py" "$RAW" "$OUT_DIR/$DATE.json" "$QUICK" "$((SECONDS - T0))" "$SPIPED_JSON"
PYBIN=/usr/bin/python3
"$PYBIN" "$ROOT/perf/tools/report.py" "$OUT_DIR/$DATE.json" || python3 "$ROOT/perf/tools/report.py" "$OUT_DIR/$DATE.json"
echo "== done in $((SECONDS - T0)) s: $OUT_DIR/$DATE.{json,md}"
cat "$OUT_DIR/$DATE.md"
