#!/usr/bin/env bash
# The README's demo, one command (as root):  bash tests/demo.sh
#
# Builds the balancer if needed, reserves hugepages, creates a client, two backends and the
# balancer in network namespaces around a Linux bridge (see tests/e2e/lib/dataplane.sh), starts
# `dataplane run` on af_packet + TAP ports with one IPIP-tunnel service, sends a few requests to
# the VIP showing which backend answered each, pings the host address through the exception
# path, prints `dataplane stats`, and removes everything on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "tests/demo.sh: run as root (namespaces, hugepages)" >&2; exit 2; }
[ -x target/release/dataplane ] || cargo build -p dataplane --release
bash tests/hugepages.sh 512 >/dev/null
source tests/e2e/lib/dataplane.sh

log "setting up namespaces: client $CLIENT_IP, backends 198.18.0.11 and .12, VIP $VIP"
dp_topology 2 tunnel
dp_write_config tunnel 1 2
log "balancer config ($CONFIG):"
sed 's/^/    /' "$CONFIG" >&2
"$DP_BIN" check-config "$CONFIG" | sed 's/^/    /' >&2
dp_start
for b in 11 12; do wait_for 15 "ARP for 198.18.0.$b" neighbor_resolved "198.18.0.$b" || fail "backend not resolved"; done

log "8 requests to http://$VIP/ from the client namespace:"
for i in $(seq 8); do
  printf '    request %d answered by %s\n' "$i" "$(ip netns exec "$NS_CL" curl -sf --max-time 5 "http://$VIP/" || echo FAILED)" >&2
done
log "ping to the host address $HOST_IP (exception path through the TAP):"
ip netns exec "$NS_CL" ping -c 2 -W 2 "$HOST_IP" | sed 's/^/    /' >&2
log "dataplane stats:"
dp stats
log "demo done; cleaning up"
