#!/usr/bin/env bash
# End-to-end: the DPDK balancer in dsr-l2 mode (destination MAC rewrite; backends hold the VIP on
# lo with ARP ignored) between real namespaces. Same assertions as dataplane-tunnel.sh.
# Needs root, hugepages (tests/hugepages.sh), a release build, python3, curl.
set -euo pipefail
source "$(dirname "$0")/lib/dataplane.sh"

dp_lb_scenario dsr-l2
log "PASS dataplane-dsr"
