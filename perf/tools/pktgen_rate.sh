#!/usr/bin/env bash
# Generator -> forwarder over memif, one core each: `dataplane pktgen` (memif client, lcore 0,
# 64 B frames) against FORWARDER (memif server, forwarding lcore 1), and print ONE number
# (--print; default: frames the forwarder sent back per second, Mpps, as the generator received
# them over its sending time). FORWARDER: `dataplane` (tunnel mode, IPIP, checked: any check
# failure fails the run) or `testpmd-MODE` (dpdk-testpmd --forward-mode=MODE, e.g. io or 5tswap;
# its frames are not IPIP: counted as returned, timed by their payload stamp, not checked).
#
# usage: pktgen_rate.sh FORWARDER FLOWS WINDOW [options]     (root, hugepages, release build)
#   --mix M          flow kinds (default syn=20,data=70,udp=10)
#   --rate PPS       target send rate (default 0: flat out)
#   --passes N       send exactly N passes over the flows (N x FLOWS packets) instead of WINDOW s
#   --capacity C     the forwarder's [conntrack] capacity (default 1048576)
#   --print KEY      what to print: mpps (default) | first_pass_mpps | later_passes_mpps |
#                    p50_us | p99_us | p999_us (checked returns, or the anchor's stamped returns) |
#                    behind_schedule (packets a --rate run skipped: the generator was off its
#                    CPU longer than one burst, see pktgen::engine::MAX_CATCH_UP) |
#                    pool_mib (the forwarder's mbuf pool from its log: mbufs x 2368 B, hugepages) |
#                    fwd_idle_per_burst (dataplane, flat out for WINDOW s only: the forwarder's
#                    RX polls that found no frame per poll that found some, from its
#                    idle_polls / rx_bursts counters read twice inside the traffic window, at
#                    20 % and 70 % of it: near 0 = the forwarder was the limit, large = it
#                    waited for the generator) |
#                    table_mib (conntrack table from --capacity: slots x 64 B, heap, so in RSS) |
#                    with --sample also:
#                    rss_mib | hwm_mib | huge_mib (forwarder VmRSS peak seen / VmHWM /
#                    HugetlbPages from /proc/PID/status, sampled every 0.5 s during the run) |
#                    fwd_cpu_pct | gen_cpu_pct (share of one core the forwarding lcore thread and
#                    the generator process got while the generator ran, from /proc/.../stat:
#                    busy-polling threads at 100 % unless the machine is shared)
#   --sample         sample memory and CPU every 0.5 s. Off by default: each sample forks a few
#                    processes onto the two cores under test, preempting a busy-poller for a
#                    millisecond or two; that alone put testpmd's round-trip p99 at 60-470 us
#                    instead of 6-8 (2026-12-06), so latency runs must not sample.
#   --extra FILE     also write every KEY=VALUE above to FILE (one run, several numbers)
set -euo pipefail
fwd=$1; flows=$2; win=$3; shift 3
mix=syn=20,data=70,udp=10; rate=0; passes=0; capacity=1048576; print=mpps; extra=; sample=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sample) sample=1; shift; continue ;;
    --mix) mix=$2 ;; --rate) rate=$2 ;; --passes) passes=$2 ;; --capacity) capacity=$2 ;;
    --print) print=$2 ;; --extra) extra=$2 ;;
    *) echo "error: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${DP_BIN:-$ROOT/target/release/dataplane}
work=$(mktemp -d /tmp/pktgen-rate-$$.XXXXXX)
memif=/pktgen-rate-$$.sock
pid=
gen=
poller=
cleanup() {
  for p in $poller $gen $pid; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p"
      for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
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
devargs = "net_memif0,role=server,socket=$memif"
role = "nic"
[host]
ipv4 = "198.18.0.2/24"
mtu = 1500
[conntrack]
capacity = $capacity
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
if [ "$passes" -gt 0 ]; then
  # No time limit of its own: allow 50 kpps (a slow period of the shared machine) plus start-up.
  span=(--count $((passes * flows)) --duration 0); limit=$((60 + passes * flows / 50000))
else
  span=(--duration "$win"); limit=$((win + 60))
fi
# The forwarder is the memif server and is fully up (lcores forwarding, its table allocated: 1 GiB
# takes seconds at 10 M flows) before the generator connects as the client, so the generator's
# clock, which starts at link up, never counts the forwarder's start-up.
case "$fwd" in
  dataplane) "$BIN" run --config "$work/fwd.toml" >"$work/fwd.log" 2>&1 & pid=$!
             # The control socket answers only once the lcores run (Control::run follows launch).
             for _ in $(seq 600); do
               "$BIN" stats --json --socket "$work/dp.sock" >/dev/null 2>&1 && break
               kill -0 "$pid" 2>/dev/null || break
               sleep 0.1
             done
             "$BIN" stats --json --socket "$work/dp.sock" >/dev/null 2>&1 \
               || { echo "error: forwarder not ready: $(tail -3 "$work/fwd.log")" >&2; exit 1; } ;;
  testpmd-*) dpdk-testpmd -l 0,1 --main-lcore=0 --in-memory --no-pci "--vdev=net_memif0,role=server,socket=$memif" -- \
               --forward-mode="${fwd#testpmd-}" --stats-period=1 --auto-start </dev/null >"$work/fwd.log" 2>&1 & pid=$!
             for _ in $(seq 300); do grep -q "@$memif" /proc/net/unix && break; sleep 0.1; done
             sleep 1 ;;  # listening comes before --auto-start begins forwarding
  *) echo "error: unknown forwarder $fwd" >&2; exit 2 ;;
esac
timeout -s INT "$limit" "$BIN" pktgen --dev "net_memif0,role=client,socket=$memif" \
  --eal "-l 0 --in-memory --no-pci --log-level *:warning" --vip 198.18.0.100 \
  --backend 198.18.0.11 --backend 198.18.0.12 --flows "$flows" --mix "$mix" --size 64 --rate "$rate" \
  "${span[@]}" --link-timeout 30 --json --quiet >"$work/gen.json" 2>"$work/gen.err" &
gen=$!
# The forwarder's poll counters (idle polls, bursts; summed over its lcores) twice inside the
# traffic window: once frames flow, plus 20 % and 70 % of the window. Two reads only (no
# `python3`, one short `dataplane stats` each): a read forks onto the cores under test, and
# reading every second made the forwarder wait for a descheduled generator.
polls() {
  "$BIN" stats --json --socket "$work/dp.sock" 2>/dev/null \
    | grep -o '"\(idle_polls\|rx_bursts\)": *[0-9]*' \
    | awk -F: '/idle/ { i += $2 } /bursts/ { b += $2 } END { print i + 0, b + 0 }'
}
: >"$work/polls"
if [ "$fwd" = dataplane ] && [ "$rate" = 0 ] && [ "$passes" = 0 ]; then
  ( for _ in $(seq 300); do
      set -- $(polls); [ "${2:-0}" -gt 0 ] && break
      sleep 0.1
    done
    sleep "$(awk -v w="$win" 'BEGIN { print w * 0.2 }')"; polls >>"$work/polls"
    sleep "$(awk -v w="$win" 'BEGIN { print w * 0.5 }')"; polls >>"$work/polls" ) &
  poller=$!
fi
# CPU ticks (utime + stime) of the forwarder's lcore thread (DPDK names it rte-worker-N) and of
# the generator process (the child of `timeout`).
lcore_ticks() {
  local t
  for t in /proc/"$pid"/task/*; do
    case "$(cat "$t/comm" 2>/dev/null)" in
      rte-worker*|lcore-worker*) awk '{ print $14 + $15 }' "$t/stat" 2>/dev/null; return ;;
    esac
  done
}
gen_ticks() { awk '{ print $14 + $15 }' "/proc/$(pgrep -P "$gen" | head -1)/stat" 2>/dev/null; }
# Forwarder memory while the generator runs: peak VmRSS seen, and the last VmHWM/HugetlbPages;
# CPU: first and last tick sample with their times.
: >"$work/mem"
cpu0=; cpu1=
while [ $sample -eq 1 ] && kill -0 "$gen" 2>/dev/null; do
  awk '/^(VmRSS|VmHWM|HugetlbPages):/ { printf "%s %s ", $1, $2 } END { print "" }' "/proc/$pid/status" >>"$work/mem" 2>/dev/null || true
  f=$(lcore_ticks || true); g=$(gen_ticks || true)
  if [ -n "$f" ] && [ -n "$g" ]; then
    cpu1="$(date +%s.%N) $f $g"
    [ -n "$cpu0" ] || cpu0=$cpu1
  fi
  sleep 0.5
done
rc=0; wait "$gen" || rc=$?
gen=
[ -z "$poller" ] || wait "$poller" || true
poller=
[ $rc -eq 0 ] || { echo "error: generator exited $rc: $(tail -3 "$work/gen.err")" >&2; exit 1; }
mbufs=$(grep -o 'mbufs=[0-9]*' "$work/fwd.log" 2>/dev/null | head -1 | cut -d= -f2 || true)
python3 - "$work/gen.json" "$work/mem" "$print" "$extra" "${mbufs:-0}" "$capacity" "$cpu0" "$cpu1" "$(getconf CLK_TCK)" "$sample" "$work/polls" "$fwd" <<'PY'
import json, sys
# Mbuf element: 2176 B data room (2048 + 128 headroom) + 128 B struct rte_mbuf + 64 B mempool
# object header. Table slots: a power-of-two number of 8-way buckets >= capacity, 64 B each.
MBUF_BYTES, SLOT_BYTES = 2368, 64
mbufs, cap = int(sys.argv[5]), int(sys.argv[6])
slots = 8 * (1 << max(0, (-(-cap // 8) - 1).bit_length()))
r = json.load(open(sys.argv[1]))
t = r["send_seconds"]
mem = {"VmRSS:": 0, "VmHWM:": 0, "HugetlbPages:": 0}
for line in open(sys.argv[2]):
    f = line.split()
    for k, v in zip(f[::2], f[1::2]):
        mem[k] = max(mem.get(k, 0), int(v)) if k == "VmRSS:" else int(v)
def cpu_pct(i):
    a, b = sys.argv[7].split(), sys.argv[8].split()
    secs = float(b[0]) - float(a[0]) if a and b else 0.0
    return 100.0 * (int(b[i]) - int(a[i])) / int(sys.argv[9]) / secs if secs > 0 else 0.0
lat = r["latency"] if r["latency"]["samples"] else r["latency_unchecked"]
vals = {
    "mpps": (r["rx_packets"] + r["rx_foreign"]) / t / 1e6 if t > 0 else 0.0,
    "first_pass_mpps": r["first_pass_mpps"], "later_passes_mpps": r["later_passes_mpps"],
    "p50_us": lat["p50_ns"] / 1e3, "p99_us": lat["p99_ns"] / 1e3, "p999_us": lat["p999_ns"] / 1e3,
    "latency_samples": lat["samples"], "behind_schedule": r["behind_schedule"],
    "pool_mib": mbufs * MBUF_BYTES / 2**20, "table_mib": slots * SLOT_BYTES / 2**20,
    "tx_mpps": r["tx_mpps"], "missing": r["missing"], "flows_seen": r["flows_seen"],
}
# Poll counters: the two reads inside the traffic window (the generator's start-up and the
# tail after it stopped are idle polls that say nothing about the forwarder).
p = [tuple(map(int, l.split())) for l in open(sys.argv[11]) if len(l.split()) == 2]
if sys.argv[12] == "dataplane" and len(p) == 2 and p[1][1] > p[0][1]:
    vals["fwd_idle_per_burst"] = (p[1][0] - p[0][0]) / (p[1][1] - p[0][1])
sampled = ("rss_mib", "hwm_mib", "huge_mib", "fwd_cpu_pct", "gen_cpu_pct")
if sys.argv[10] == "1":
    vals.update(zip(sampled, (mem["VmRSS:"] / 1024, mem["VmHWM:"] / 1024, mem["HugetlbPages:"] / 1024, cpu_pct(1), cpu_pct(2))))
elif sys.argv[3] in sampled:
    sys.exit(f"error: --print {sys.argv[3]} needs --sample")
if sys.argv[4]:
    with open(sys.argv[4], "w") as f:
        for k, v in vals.items():
            f.write(f"{k}={v}\n")
if sys.argv[3] not in vals:
    sys.exit(f"error: --print {sys.argv[3]}: use one of {', '.join(vals)}")
if sys.argv[3] in ("first_pass_mpps", "later_passes_mpps") and not vals[sys.argv[3]]:
    sys.exit("error: the generator did not complete the passes (raise the timeout or lower --flows)")
print("%.3f" % vals[sys.argv[3]])
PY
