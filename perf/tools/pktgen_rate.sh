#!/usr/bin/env bash
# Generator -> forwarder over memif, one core each: `dataplane pktgen` (memif server, lcore 0,
# 64 B frames, flat out, syn=20,data=70,udp=10) against FORWARDER (memif client, forwarding lcore
# 1), and print ONE number: frames the forwarder sent back per second (Mpps), as the generator
# received them over its sending time. FORWARDER: `dataplane` (tunnel mode, IPIP, checked: any
# check failure fails the run) or `testpmd-MODE` (dpdk-testpmd --forward-mode=MODE, e.g. io or
# 5tswap; its frames are not IPIP and are counted as returned without checks).
# usage: pktgen_rate.sh FORWARDER FLOWS WINDOW      (root, hugepages, release build)
set -euo pipefail
fwd=$1; flows=$2; win=$3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${DP_BIN:-$ROOT/target/release/dataplane}
work=$(mktemp -d /tmp/pktgen-rate-$$.XXXXXX)
memif=/pktgen-rate-$$.sock
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
cat >"$work/fwd.toml" <<EOT
[eal]
args = ["--in-memory", "--no-pci", "--log-level", "*:warning"]
main_lcore = 0
lcores = [1]
[[port]]
name = "nic0"
devargs = "net_memif0,role=client,socket=$memif"
role = "nic"
[host]
ipv4 = "198.18.0.2/24"
mtu = 1500
[conntrack]
capacity = 1048576
[control]
socket = "$work/dp.sock"
EOT
for proto in tcp:80 udp:53; do
  cat >>"$work/fwd.toml" <<EOT
[[service]]
name = "${proto%:*}"
vip = "198.18.0.100"
protocol = "${proto%:*}"
port = ${proto#*:}
mode = "tunnel"
encap = "ipip"
[[service.backend]]
address = "198.18.0.11"
mac = "02:00:00:00:00:11"
[[service.backend]]
address = "198.18.0.12"
mac = "02:00:00:00:00:12"
EOT
done
timeout -s INT $((win + 60)) "$BIN" pktgen --dev "net_memif0,role=server,socket=$memif" \
  --eal "-l 0 --in-memory --no-pci --log-level *:warning" --vip 198.18.0.100 \
  --backend 198.18.0.11 --backend 198.18.0.12 --flows "$flows" --size 64 --rate 0 \
  --duration "$win" --link-timeout 30 --json --quiet >"$work/gen.json" 2>"$work/gen.err" &
gen=$!
for _ in $(seq 100); do grep -q "@$memif" /proc/net/unix && break; sleep 0.1; done
case "$fwd" in
  dataplane) "$BIN" run --config "$work/fwd.toml" >"$work/fwd.log" 2>&1 & pid=$! ;;
  testpmd-*) dpdk-testpmd -l 0,1 --main-lcore=0 --in-memory --no-pci "--vdev=net_memif0,role=client,socket=$memif" -- \
               --forward-mode="${fwd#testpmd-}" --stats-period=1 --auto-start </dev/null >"$work/fwd.log" 2>&1 & pid=$! ;;
  *) echo "error: unknown forwarder $fwd" >&2; exit 2 ;;
esac
rc=0; wait "$gen" || rc=$?
[ $rc -eq 0 ] || { echo "error: generator exited $rc: $(tail -3 "$work/gen.err")" >&2; exit 1; }
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); t=r['send_seconds'];
print('%.3f' % ((r['rx_packets'] + r['rx_foreign']) / t / 1e6 if t > 0 else 0))" "$work/gen.json"
