#!/usr/bin/env bash
# End-to-end smoke of `dataplane pktgen` against `dataplane run` over memif (correctness only, no
# speed assertion; about 15 s):
#   1. forwarder (tunnel mode, IPIP, backends .11/.12, memif client) + generator (memif server,
#      1000 flows, 100 kpps, 3 s): zero check failures and returned packets > 0;
#   2. the same generator told to expect a different backend set (.11/.13): it must exit non-zero
#      with a wrong-backend error.
# Two DPDK processes on 2 cores: both --in-memory; the forwarder uses -l 0,1 (main 0, forwarding
# lcore 1), the generator runs on lcore 0. Needs root, hugepages (tests/hugepages.sh) and a
# release build.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${DP_BIN:-$ROOT/target/release/dataplane}
WORK=$(mktemp -d "/tmp/pktgen-smoke-$$.XXXXXX")
SOCK=$WORK/dp.sock
MEMIF=/pktgen-smoke-$$.sock   # abstract socket (memif default): no file left behind
FWD_PID=
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
cleanup() {
  local rc=$?
  set +e
  if [ -n "$FWD_PID" ] && kill -0 "$FWD_PID" 2>/dev/null; then
    kill -TERM "$FWD_PID"
    for _ in $(seq 50); do kill -0 "$FWD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$FWD_PID" 2>/dev/null
    wait "$FWD_PID" 2>/dev/null
  fi
  if [ $rc -ne 0 ]; then
    for f in fwd.log gen1.err gen2.err; do
      [ -f "$WORK/$f" ] && { log "$f (last 20 lines):"; tail -20 "$WORK/$f" >&2; }
    done
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT INT TERM

[ -x "$BIN" ] || fail "$BIN missing: cargo build -p dataplane --release"
bash "$ROOT/tests/hugepages.sh" 512 >/dev/null || fail "no hugepages (tests/hugepages.sh 512)"

cat >"$WORK/fwd.toml" <<EOT
[eal]
args = ["--in-memory", "--no-pci", "--log-level", "*:warning"]
main_lcore = 0
lcores = [1]

[[port]]
name = "nic0"
devargs = "net_memif0,role=client,socket=$MEMIF"
role = "nic"

[host]
ipv4 = "198.18.0.2/24"
mtu = 1500

[conntrack]
capacity = 65536

[control]
socket = "$SOCK"

[[service]]
name = "web"
vip = "198.18.0.100"
protocol = "tcp"
port = 80
mode = "tunnel"
encap = "ipip"
[[service.backend]]
address = "198.18.0.11"
mac = "02:00:00:00:00:11"
[[service.backend]]
address = "198.18.0.12"
mac = "02:00:00:00:00:12"

[[service]]
name = "dns"
vip = "198.18.0.100"
protocol = "udp"
port = 53
mode = "tunnel"
encap = "ipip"
[[service.backend]]
address = "198.18.0.11"
mac = "02:00:00:00:00:11"
[[service.backend]]
address = "198.18.0.12"
mac = "02:00:00:00:00:12"
EOT

# The memif client cannot start before its server exists, so each run starts the generator
# (server) first, then the forwarder; the generator waits for the link before sending.
start_fwd() {
  for _ in $(seq 100); do grep -q "@$MEMIF" /proc/net/unix && break; sleep 0.1; done
  "$BIN" run --config "$WORK/fwd.toml" >>"$WORK/fwd.log" 2>&1 &
  FWD_PID=$!
  for _ in $(seq 150); do [ -S "$SOCK" ] && break; kill -0 "$FWD_PID" 2>/dev/null || break; sleep 0.2; done
  [ -S "$SOCK" ] || fail "forwarder did not start (no control socket)"
}
stop_fwd() {
  kill -TERM "$FWD_PID"
  for _ in $(seq 50); do kill -0 "$FWD_PID" 2>/dev/null || break; sleep 0.1; done
  wait "$FWD_PID" 2>/dev/null || true
  FWD_PID=
  rm -f "$SOCK"
}

# gen NAME BACKEND...: generator for 3 s at 100 kpps over 1000 flows (JSON in $WORK/NAME.json)
# with a forwarder around it; sets GEN_RC.
gen() {
  local name=$1; shift
  local args=() pid
  for b in "$@"; do args+=(--backend "$b"); done
  timeout -s INT 60 "$BIN" pktgen --dev "net_memif0,role=server,socket=$MEMIF" \
    --eal "-l 0 --in-memory --no-pci --log-level *:warning" \
    --vip 198.18.0.100 "${args[@]}" --flows 1000 --mix syn=20,data=70,udp=10 --size 128 \
    --rate 100000 --duration 3 --link-timeout 20 --json >"$WORK/$name.json" 2>"$WORK/$name.err" &
  pid=$!
  start_fwd
  GEN_RC=0; wait "$pid" || GEN_RC=$?
  kill -0 "$FWD_PID" || fail "forwarder died"
  stop_fwd
}

log "run 1: generator expecting the forwarder's backends"
gen gen1 198.18.0.11 198.18.0.12; rc=$GEN_RC
[ $rc -eq 0 ] || fail "generator exited $rc with the right backend set: $(tail -3 "$WORK/gen1.err")"
read -r rx fails tx seen < <(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['rx_packets'], r['check_failures'], r['tx_packets'], r['flows_seen'])" "$WORK/gen1.json")
log "sent $tx, returned correct $rx, check failures $fails, flows seen $seen/1000"
[ "$fails" -eq 0 ] || fail "$fails check failures"
[ "$rx" -gt 0 ] || fail "nothing came back from the forwarder"
[ "$seen" -gt 900 ] || fail "only $seen of 1000 flows came back"

log "run 2: generator expecting a different backend set (must fail loudly)"
gen gen2 198.18.0.11 198.18.0.13; rc=$GEN_RC
[ $rc -eq 1 ] || fail "generator exited $rc with a wrong backend set (expected 1)"
grep -q 'wrong backend' "$WORK/gen2.err" || fail "no wrong-backend error in the generator's output"
wb=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['wrong_backend'])" "$WORK/gen2.json")
[ "$wb" -gt 0 ] || fail "wrong_backend counter is $wb"
log "generator reported $wb wrong-backend packets and exited 1"
log "PASS pktgen-smoke"
