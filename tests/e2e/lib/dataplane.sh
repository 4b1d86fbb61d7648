# Shared setup for tests/e2e/dataplane-*.sh and tests/demo.sh (sourced, not run).
#
# Topology (all addresses in 198.18.0.0/24, all inside namespaces created here, names carry $ID):
#
#   ns cl$ID  [c0 198.18.0.1] ──┐
#   ns be1$ID [e0 198.18.0.11] ─┤   ns sw$ID: Linux bridge br0 (the "switch")
#   ns be2$ID [e0 198.18.0.12] ─┤
#   ns be3$ID [e0 198.18.0.13] ─┤
#   ns lb$ID  [lb0, no address] ┘ ◄── dataplane: net_af_packet0,iface=lb0 (nic0)
#                                            │   net_tap0,iface=dp0 (kni0, exception path)
#   ns host$ID [dp0 198.18.0.2] ◄────────────┘   (the TAP, moved out of lb$ID so that lb$ID's
#                                                 kernel never answers for the host address)
#
# Backends hold the VIP 198.18.0.100 on lo (arp_ignore=1, arp_announce=2), decapsulate IPIP
# (kernel ipip device, or tests/e2e/lib/ipip-decap.py + TUN when the kernel has no IPIP) and
# answer the client directly (DSR). Each serves "be<i>" at / and a 600 KB /big.
#
# Research notes applied (docs/DPDK.md): tx checksum offload off on namespace veths (af_packet
# would forward CHECKSUM_PARTIAL frames unfinished), GRO off (veth default) on lb0, promiscuous
# mode (the runtime turns it on), EAL --in-memory --no-pci.

DP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
DP_BIN=${DP_BIN:-$DP_ROOT/target/release/dataplane}
ID=${ID:-$$}
NS_SW=sw$ID NS_CL=cl$ID NS_LB=lb$ID NS_HOST=host$ID
VIP=198.18.0.100
HOST_IP=198.18.0.2
CLIENT_IP=198.18.0.1
WORK=$(mktemp -d "/tmp/dp-e2e-$ID.XXXXXX")
SOCK=$WORK/dp.sock
CONFIG=$WORK/dataplane.toml
LB_PID=
PIDS=()
NAMESPACES=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

# wait_for SECONDS WHAT CMD...: polls CMD every 0.2 s until it succeeds or SECONDS pass.
wait_for() {
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= end)); then log "timeout after ${t}s waiting for $what"; return 1; fi
    sleep 0.2
  done
}

dp_cleanup() {
  local rc=$?
  set +e
  if [ -n "$LB_PID" ] && kill -0 "$LB_PID" 2>/dev/null; then
    kill -TERM "$LB_PID"
    for _ in $(seq 50); do kill -0 "$LB_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$LB_PID" 2>/dev/null
  fi
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "$LB_PID" ] && wait "$LB_PID" 2>/dev/null
  if [ $rc -ne 0 ] && [ -f "$WORK/lb.log" ]; then log "dataplane log (last 40 lines):"; tail -40 "$WORK/lb.log" >&2; fi
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$WORK"
  exit $rc
}
trap dp_cleanup EXIT INT TERM

need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is not installed (see tests/run.sh PACKAGES)"; }

add_ns() { ip netns add "$1"; NAMESPACES+=("$1"); ip -n "$1" link set lo up; }

# attach NS IFNAME MTU [MAC]: a veth from the switch's bridge into NS.
attach() {
  local ns=$1 ifname=$2 mtu=$3 mac=${4:-}
  local peer="p$ifname${ns:0:6}"
  peer=${peer:0:15}
  ip -n "$NS_SW" link add "$peer" mtu "$mtu" type veth peer name "$ifname" netns "$ns" mtu "$mtu"
  ip -n "$NS_SW" link set "$peer" master br0 up
  if [ -n "$mac" ]; then ip -n "$ns" link set "$ifname" address "$mac"; fi
  ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$ifname.disable_ipv6=1"
}

# dp_topology NBACKENDS MODE(tunnel|dsr-l2)
dp_topology() {
  local n=$1 mode=$2
  for c in ip ethtool curl python3; do need "$c"; done
  [ -x "$DP_BIN" ] || fail "$DP_BIN missing: cargo build -p dataplane --release"
  add_ns "$NS_SW"; add_ns "$NS_CL"; add_ns "$NS_LB"; add_ns "$NS_HOST"
  ip -n "$NS_SW" link add br0 type bridge
  ip -n "$NS_SW" link set br0 up
  # The tunnel adds 20 bytes on the LB→backend hop: give the switch and the backends room.
  attach "$NS_CL" c0 1500
  ip -n "$NS_CL" addr add "$CLIENT_IP/24" dev c0
  ip -n "$NS_CL" link set c0 up
  ip netns exec "$NS_CL" ethtool -K c0 tx off >/dev/null
  # A small receive window keeps the rate-limited download flowing through the balancer (ACKs)
  # for its whole duration instead of the server sending everything into socket buffers at once.
  ip netns exec "$NS_CL" sysctl -qw net.ipv4.tcp_rmem="4096 16384 32768"
  attach "$NS_LB" lb0 1600
  ip netns exec "$NS_LB" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip -n "$NS_LB" link set lb0 up
  for i in $(seq 1 "$n"); do dp_backend "$i" "$mode"; done
}

# dp_backend I MODE: namespace be<I>$ID at 198.18.0.1<I>, VIP on lo, HTTP server.
dp_backend() {
  local i=$1 mode=$2 ns=be$1$ID
  add_ns "$ns"
  attach "$ns" e0 1600 "02:00:00:00:00:1$i"
  ip -n "$ns" addr add "198.18.0.1$i/24" dev e0
  ip -n "$ns" link set e0 up
  ip netns exec "$ns" ethtool -K e0 tx off >/dev/null
  ip -n "$ns" addr add "$VIP/32" dev lo
  ip netns exec "$ns" sh -c "
    sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
      net.ipv4.conf.e0.arp_ignore=1 net.ipv4.conf.e0.arp_announce=2 \
      net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.e0.rp_filter=0"
  if [ "$mode" = tunnel ]; then
    if ip -n "$ns" link add tunl0 type ipip external 2>/dev/null || ip -n "$ns" link show tunl0 >/dev/null 2>&1; then
      ip -n "$ns" link set tunl0 up
      ip netns exec "$ns" sysctl -qw net.ipv4.conf.tunl0.rp_filter=0
    else
      ip netns exec "$ns" python3 "$DP_ROOT/tests/e2e/lib/ipip-decap.py" ipip0 &
      PIDS+=($!)
      wait_for 10 "ipip0 in $ns" ip -n "$ns" link show ipip0
      ip -n "$ns" link set ipip0 up
      ip netns exec "$ns" sysctl -qw net.ipv4.conf.ipip0.rp_filter=0
    fi
  fi
  mkdir -p "$WORK/www$i"
  echo "be$i" >"$WORK/www$i/index.html"
  { echo "be$i"; head -c 600000 /dev/zero | tr '\0' 'x'; } >"$WORK/www$i/big"
  ip netns exec "$ns" python3 -m http.server 80 --bind 0.0.0.0 --directory "$WORK/www$i" >"$WORK/http$i.log" 2>&1 &
  PIDS+=($!)
  wait_for 10 "HTTP server in $ns" ip netns exec "$ns" curl -sf --max-time 1 "http://198.18.0.1$i/"
}

# dp_write_config MODE BACKEND_INDEXES...: the balancer's config for the current topology.
# DP_LCORES=2 gives it two forwarding lcores (1 and 2, both on CPU 1 so that it runs on a 2-CPU
# machine, through [eal.cpus]) and the af_packet port two queue pairs, which the kernel fills by
# flow hash (PACKET_FANOUT): per-lcore connection tables, as with RSS on a real NIC.
DP_LCORES=${DP_LCORES:-1}
dp_write_config() {
  local mode=$1; shift
  local lcores='[1]' cpus='' qpairs=''
  if [ "$DP_LCORES" = 2 ]; then
    lcores='[1, 2]' qpairs=',qpairs=2'
    cpus=$'\n[eal.cpus]\n0 = 0\n1 = 1\n2 = 1'
  fi
  # Hugepages when tests/hugepages.sh reserved them; otherwise plain memory (slower, same code).
  local mem='"--in-memory"'
  local free
  free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
  if [ "$free" -lt 64 ]; then mem='"--no-huge", "--no-shconf", "-m", "256"'; fi
  {
    cat <<EOT
[eal]
args = [$mem, "--no-pci", "--log-level", "*:warning"]
main_lcore = 0
lcores = $lcores$cpus

[[port]]
name = "nic0"
devargs = "net_af_packet0,iface=lb0$qpairs"
role = "nic"
kernel = "kni0"

[[port]]
name = "kni0"
devargs = "net_tap0,iface=dp0"
role = "kernel"

[host]
ipv4 = "$HOST_IP/24"
mtu = 1500

[conntrack]
capacity = 65536

[control]
socket = "$SOCK"

[[service]]
name = "web"
vip = "$VIP"
protocol = "tcp"
port = 80
mode = "$mode"
EOT
    [ "$mode" = tunnel ] && echo 'encap = "ipip"'
    for i in "$@"; do printf '[[service.backend]]\naddress = "198.18.0.1%s"\n' "$i"; done
  } >"$CONFIG.tmp"
  mv "$CONFIG.tmp" "$CONFIG"
}

# dp_start: runs the balancer in lb$ID, moves its TAP into host$ID and gives it the host address.
# The TAP exists as soon as the EAL probed it, but the balancer then sets its MAC and starts it
# by name inside lb$ID; moving it before that makes the balancer fail ("No such device", seen
# once in CI). The control socket is bound only after every port started, so wait for it first.
dp_start() {
  ip netns exec "$NS_LB" "$DP_BIN" run --config "$CONFIG" >"$WORK/lb.log" 2>&1 &
  LB_PID=$!
  wait_for 30 "the control socket (every port started)" test -S "$SOCK" || fail "balancer did not start"
  kill -0 "$LB_PID" || fail "balancer exited"
  ip -n "$NS_LB" link show dp0 >/dev/null || fail "no TAP dp0 in $NS_LB"
  ip -n "$NS_LB" link set dp0 netns "$NS_HOST"
  ip -n "$NS_HOST" addr add "$HOST_IP/24" dev dp0
  ip -n "$NS_HOST" link set dp0 up
  ip netns exec "$NS_HOST" sysctl -qw net.ipv6.conf.dp0.disable_ipv6=1
}

# dp CMD...: the dataplane CLI against this test's instance.
dp() { "$DP_BIN" "$@" --socket "$SOCK"; }

# curl_vip N: N separate HTTP requests to the VIP from the client; prints one backend name per
# line ("FAIL" for a failed request).
curl_vip() {
  ip netns exec "$NS_CL" bash -c "for i in \$(seq $1); do curl -sf --max-time 5 http://$VIP/ || echo FAIL; done"
}

# check_share OUTPUT NAME...: every request succeeded and each NAME got 35-65 % of them.
check_share() {
  local out=$1; shift
  local total fails
  total=$(wc -l <<<"$out")
  fails=$(grep -c FAIL <<<"$out" || true)
  [ "$fails" -eq 0 ] || fail "$fails of $total requests to the VIP failed"
  for b in "$@"; do
    local k
    k=$(grep -cx "$b" <<<"$out" || true)
    log "$b answered $k of $total"
    ((k * 100 >= total * 35 && k * 100 <= total * 65)) || fail "$b answered $k of $total (want 35-65 %)"
  done
}

# stats_get PYTHON_EXPR: evaluates EXPR over the `dataplane stats --json` answer (bound to `s`,
# the "stats" object) and prints the result.
stats_get() {
  dp stats --json | python3 -c "import json,sys; s=json.load(sys.stdin)['stats']; print($1)"
}

# neighbor_resolved IP: the control plane has learned IP's MAC.
neighbor_resolved() {
  dp neighbors --json | python3 -c "
import json,sys
a=json.load(sys.stdin)
sys.exit(0 if any(n.get('ip')=='$1' and n.get('mac') for n in a.get('neighbors',[])) else 1)"
}

# reloads_at_least N: the running instance has applied N reloads without error.
reloads_at_least() {
  [ "$(stats_get "s['control']['reloads']")" -ge "$1" ] && [ "$(stats_get "s['control']['reload_errors']")" -eq 0 ]
}

# dp_lb_scenario MODE: the shared body of dataplane-tunnel.sh and dataplane-dsr.sh.
#  1. 200 separate requests to the VIP all succeed, be1 and be2 each answer 35-65 %;
#  2. a long download (held open by the client until both reloads are done) survives a reload
#     adding be3 (control socket) and another removing the backend that does NOT serve it
#     (SIGHUP); new requests reach be3 and never the removed backend;
#  3. the counters match: >= 290 new flows, packets for every configured backend, no drops for
#     reasons that must not happen here, nothing lost at TX.
dp_lb_scenario() {
  local mode=$1
  dp_topology 3 "$mode"
  dp_write_config "$mode" 1 2
  "$DP_BIN" check-config "$CONFIG" >/dev/null || fail "check-config rejected the test config"
  dp_start
  for b in 11 12; do wait_for 15 "ARP for 198.18.0.$b" neighbor_resolved "198.18.0.$b" || fail "backend 198.18.0.$b never resolved"; done

  log "$mode: 200 requests to the VIP"
  local out
  out=$(curl_vip 200)
  check_share "$out" be1 be2

  log "$mode: long-lived download across two reloads"
  # Held open by the test (tests/e2e/lib/held-get.py) until both reloads are done.
  ip netns exec "$NS_CL" python3 "$DP_ROOT/tests/e2e/lib/held-get.py" "$VIP" /big "$WORK/long.out" "$WORK/long.go" 2>"$WORK/long.err" &
  local long=$!
  PIDS+=("$long")
  wait_for 10 "the download to start" test -s "$WORK/long.out" || fail "download did not start"
  local owner keep drop
  owner=$(head -c 3 "$WORK/long.out")
  case $owner in be1) keep=1 drop=2 ;; be2) keep=2 drop=1 ;; *) fail "download came from '$owner'" ;; esac
  log "download served by $owner"

  dp_write_config "$mode" 1 2 3
  dp reload >/dev/null || fail "reload adding be3 refused"
  wait_for 15 "ARP for 198.18.0.13" neighbor_resolved 198.18.0.13 || fail "be3 never resolved"
  out=$(curl_vip 60)
  [ "$(grep -c FAIL <<<"$out" || true)" -eq 0 ] || fail "requests failed after adding be3"
  grep -qx be3 <<<"$out" || fail "be3 got none of 60 new flows"

  # The second reload goes through SIGHUP (what `systemctl reload` sends) instead of the socket.
  dp_write_config "$mode" "$keep" 3
  kill -HUP "$LB_PID"
  wait_for 10 "the SIGHUP reload" reloads_at_least 2 || fail "SIGHUP did not reload the config"
  out=$(curl_vip 30)
  [ "$(grep -c FAIL <<<"$out" || true)" -eq 0 ] || fail "requests failed after removing be$drop"
  if grep -qx "be$drop" <<<"$out"; then fail "removed backend be$drop still gets new flows"; fi
  # The download is held at about 10 KB/s until the go file exists, so it can only have ended
  # here if the flow broke.
  if ! kill -0 "$long" 2>/dev/null; then
    local rc=0
    wait "$long" || rc=$?
    fail "the long download ended during the reloads (exit $rc: $(cat "$WORK/long.err"); conntrack $(stats_get "s['conntrack']"))"
  fi
  log "download still open after both reloads ($(stat -c %s "$WORK/long.out") bytes so far); releasing it"
  touch "$WORK/long.go"

  wait "$long" || fail "the long download broke after the reloads (exit $?: $(cat "$WORK/long.err"))"
  local size
  size=$(stat -c %s "$WORK/long.out")
  [ "$size" -eq 600004 ] || fail "long download has $size bytes, want 600004"
  log "long download complete ($size bytes from $owner)"

  log "$mode: counters"
  dp stats >"$WORK/stats.txt" || fail "dataplane stats failed"
  local flows
  flows=$(stats_get "[x['new_flows'] for x in s['services'] if x['name']=='web'][0]")
  # Logged every run, so a short count says where the flows went (an untracked first packet,
  # a table hit, or a SYN that never arrived).
  log "service web: $flows new flows, $(stats_get "[x['untracked'] for x in s['services'] if x['name']=='web'][0]") untracked; conntrack $(stats_get "s['conntrack']")"
  ((flows >= 290)) || fail "service web counted $flows new flows, want >= 290"
  for b in "198.18.0.1$keep" 198.18.0.13; do
    local p
    p=$(stats_get "[x['packets'] for x in s['backends'] if x['address']=='$b'][0]")
    ((p > 0)) || fail "backend $b shows $p packets"
  done
  local bad
  bad=$(stats_get "sum(d['packets'] for d in s['drops'] if d['reason'] in ('truncated','malformed','bad_checksum','no_service','no_backend','table_full','ttl_exceeded','unsupported'))")
  [ "$bad" -eq 0 ] || fail "unexpected drops: $(stats_get "s['drops']")"
  # A full af_packet TX ring (the kernel side of the veth is slower than the lcore) is a real,
  # counted event on this virtual link, so it is reported, not asserted to be zero; it must
  # match the per-port tx_dropped counters.
  local txd txfull
  txd=$(stats_get "sum(p['tx_dropped'] for p in s['ports'])")
  txfull=$(stats_get "[d['packets'] for d in s['drops'] if d['reason']=='tx_full'][0]")
  [ "$txd" -eq "$txfull" ] || fail "tx_dropped ($txd) != tx_full drops ($txfull)"
  log "$mode: new_flows=$flows, no unexpected drops, $txd frames refused by a full TX ring"
}
