#!/usr/bin/env bash
# The forwarder's rate on a net_pcap replay: runs `dataplane run` in tunnel mode (IPIP, two
# backends with static MACs, VIP 198.18.100.1:80 as written by mkpcap.py) with PCAP replayed
# forever as its NIC (TX goes nowhere: net_pcap without tx_pcap drops), samples
# `dataplane stats --json` once a second for WINDOW seconds and prints ONE number: the median
# per-second rate of frames the forwarding lcores received (Mpps), samples of the first 2 s
# dropped (warm-up).
# usage: dataplane_rate.sh WINDOW PCAP     (root, hugepages, release build)
set -euo pipefail
win=$1; pcap=$(realpath "$2")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${DP_BIN:-$ROOT/target/release/dataplane}
[ -x "$BIN" ] || { echo "error: $BIN missing: cargo build -p dataplane --release" >&2; exit 1; }
[ -f "$pcap" ] || { echo "error: no pcap $pcap (perf/tools/mkpcap.py)" >&2; exit 1; }
work=$(mktemp -d /tmp/dp-rate-$$.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
sed -e "s|@DEVARGS@|net_pcap0,rx_pcap=$pcap,infinite_rx=1|" -e "s|@SOCKET@|$work/dp.sock|" \
  "$ROOT/perf/tools/forwarder-tunnel.toml" >"$work/fwd.toml"
"$BIN" run --config "$work/fwd.toml" >"$work/fwd.log" 2>&1 &
pid=$!
for _ in $(seq 150); do [ -S "$work/dp.sock" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
[ -S "$work/dp.sock" ] || { echo "error: forwarder did not start: $(tail -3 "$work/fwd.log")" >&2; exit 1; }
rx() {
  "$BIN" stats --json --socket "$work/dp.sock" \
    | python3 -c "import json,sys; s=json.load(sys.stdin)['stats']; print(sum(l['rx_packets'] for l in s['lcores']))"
}
# One sample per second: rx counter and a high-resolution timestamp.
for ((i = 0; i <= win; i++)); do
  echo "$(date +%s.%N) $(rx)" >>"$work/samples"
  sleep 1
done
kill -0 "$pid" || { echo "error: forwarder died: $(tail -3 "$work/fwd.log")" >&2; exit 1; }
awk 'NR > 1 { r = ($2 - p2) / ($1 - p1); if (NR > 3) print r } { p1 = $1; p2 = $2 }' "$work/samples" \
  | sort -g | awk '{a[NR]=$1} END { if (NR == 0) { print "error: no samples" > "/dev/stderr"; exit 1 }
                                  m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.3f\n", m / 1e6 }'
