#!/usr/bin/env bash
# End-to-end: the balancer with TWO forwarding lcores (tunnel mode). The NIC port has two queue
# pairs that the kernel fills by flow hash (net_af_packet's PACKET_FANOUT, the virtual stand-in
# for RSS), so each lcore sees its own share of the flows and keeps its own connection table.
# Both lcores run on CPU 1 ([eal.cpus]), which lets EAL start three lcores on this 2-CPU machine.
# Checks: 200 separate requests all succeed and both backends get 35-65 %; BOTH lcores forwarded
# a real share (20-80 %) and hold connection-table entries; the per-lcore counts add up to the
# totals; a reload reaches both lcores (each switches snapshot) and the new backend then serves.
# Topology and helpers: tests/e2e/lib/dataplane.sh. Needs root, hugepages, a release build.
set -euo pipefail
source "$(dirname "$0")/lib/dataplane.sh"

DP_LCORES=2
dp_topology 3 tunnel
dp_write_config tunnel 1 2
"$DP_BIN" check-config "$CONFIG" >/dev/null || fail "check-config rejected the two-lcore config"
dp_start
for b in 11 12; do wait_for 15 "ARP for 198.18.0.$b" neighbor_resolved "198.18.0.$b" || fail "backend 198.18.0.$b never resolved"; done
[ "$(stats_get "len(s['lcores'])")" -eq 2 ] || fail "stats show $(stats_get "len(s['lcores'])") lcores, want 2"

log "rss: 200 requests to the VIP over two lcores"
out=$(curl_vip 200)
check_share "$out" be1 be2

read -r f1 f2 total <<<"$(stats_get "' '.join(str(x) for x in [l['forwarded'] for l in s['lcores']] + [s['verdicts']['forwarded']])")"
log "forwarded: lcore A $f1, lcore B $f2, total $total"
((f1 + f2 == total)) || fail "per-lcore forwarded $f1 + $f2 != total $total"
for f in "$f1" "$f2"; do
  ((f * 100 >= total * 20 && f * 100 <= total * 80)) || fail "one lcore forwarded $f of $total (want 20-80 %): the queues are not spread by flow"
done
read -r e1 e2 <<<"$(stats_get "' '.join(str(l['conntrack_entries']) for l in s['lcores'])")"
((e1 > 0 && e2 > 0)) || fail "connection-table entries per lcore: $e1 and $e2, want both > 0"
log "connection-table entries per lcore: $e1 and $e2"

log "rss: reload adding be3 reaches both lcores"
read -r s1 s2 <<<"$(stats_get "' '.join(str(l['snapshot_switches']) for l in s['lcores'])")"
dp_write_config tunnel 1 2 3
dp reload >/dev/null || fail "reload adding be3 refused"
wait_for 15 "ARP for 198.18.0.13" neighbor_resolved 198.18.0.13 || fail "be3 never resolved"
read -r t1 t2 <<<"$(stats_get "' '.join(str(l['snapshot_switches']) for l in s['lcores'])")"
((t1 > s1 && t2 > s2)) || fail "snapshot switches per lcore $s1,$s2 -> $t1,$t2: a lcore kept the old config"
out=$(curl_vip 30)
[ "$(grep -c FAIL <<<"$out" || true)" -eq 0 ] || fail "requests failed after the reload"
grep -qx be3 <<<"$out" || fail "be3 got none of 30 new flows"

bad=$(stats_get "sum(d['packets'] for d in s['drops'] if d['reason'] in ('truncated','malformed','bad_checksum','no_service','no_backend','table_full','ttl_exceeded','unsupported'))")
[ "$bad" -eq 0 ] || fail "unexpected drops: $(stats_get "s['drops']")"
log "PASS dataplane-rss"
