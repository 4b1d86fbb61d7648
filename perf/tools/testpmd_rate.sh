#!/usr/bin/env bash
# Run dpdk-testpmd for SECONDS on the given EAL vdevs in a forwarding MODE and print the median
# per-second forwarded rate of the first port's RX in Mpps (samples of the first 2 s dropped).
# usage: testpmd_rate.sh MODE SECONDS VDEV...      e.g. testpmd_rate.sh 5tswap 8 net_pcap0,rx_pcap=x.pcap,infinite_rx=1 net_null1,no-rx=1
set -euo pipefail
mode=$1; secs=$2; shift 2
args=()
for v in "$@"; do args+=("--vdev=$v"); done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
timeout -s TERM "$secs" dpdk-testpmd -l 0,1 --in-memory --no-pci "${args[@]}" -- \
  --forward-mode="$mode" --stats-period=1 --auto-start --total-num-mbufs=131072 >"$log" 2>&1 || true
# testpmd prints, per port and period: "Rx-pps:     12345678          Rx-bps: ..."
awk '/NIC statistics for port 0 / {p=1} p && /Rx-pps:/ {print $2; p=0}' "$log" | tail -n +3 \
  | sort -n | awk '{a[NR]=$1} END { if (NR == 0) { print "error: no samples" > "/dev/stderr"; exit 1 }
                                  m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.3f\n", m / 1e6 }'
