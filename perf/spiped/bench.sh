#!/usr/bin/env bash
# spiped benchmark: our spiped against Debian's spiped 1.6, stunnel4, two socat relays and plain
# TCP, all measured in the same run on 127.0.0.1 (method: docs in perf/spiped/README.md, numbers
# and commands from the research notes, section 5).
#
#   perf/spiped/bench.sh           # full: 5 runs per cell, 1 GiB stream, 10 s connection rate
#   perf/spiped/bench.sh --quick   # smoke: 1 run, 256 MiB, 3 s
#
# Measures, per path: MB/s of one stream (source start -> sink exit at EOF), sequential
# connections per second (connect, 1 byte, 1-byte echo, close), and for the spiped pairs the RSS
# per idle established connection pair (both daemons). Writes
# perf/results/spiped-<UTC date>[-quick].{md,json} and prints the Markdown table.
# Every process it starts is killed by PID on exit (trap).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
  esac
done
if [ $QUICK -eq 1 ]; then
  RUNS=1; BYTES=$((256 << 20)); BYTES_H="256 MiB"; CONN_SECS=3; IDLE_N=200; IDLE_WAIT_MAX=${IDLE_WAIT_MAX:-5}
else
  RUNS=5; BYTES=$((1 << 30)); BYTES_H="1 GiB"; CONN_SECS=10; IDLE_N=200; IDLE_WAIT_MAX=${IDLE_WAIT_MAX:-30}
fi
# Ceiling for one stream run; a stuck pipe fails the cell instead of hanging the benchmark.
STREAM_TIMEOUT=300

for tool in socat stunnel4 python3 openssl ss /usr/bin/spiped; do
  command -v "$tool" >/dev/null || { echo "bench.sh: missing $tool (apt-get install socat stunnel4 python3 openssl iproute2 spiped)" >&2; exit 1; }
done

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  echo "== building release binaries" >&2
  (cd "$ROOT" && cargo build -p spiped --release --bins 2>&1 | tail -3 >&2)
fi
OURS="$ROOT/target/release/spiped"
DEB=/usr/bin/spiped

WORK=$(mktemp -d /tmp/spiped-bench.XXXXXX)
ALL_PIDS=()   # everything we ever started, killed on exit
RUN_PIDS=()   # daemons of the current path, killed by stop_path
cleanup() {
  for p in "${ALL_PIDS[@]:-}"; do
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# spawn NAME CMD... : starts CMD in the background, output to $WORK/NAME.log; sets LAST_PID.
spawn() {
  local name=$1; shift
  "$@" >>"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  ALL_PIDS+=("$LAST_PID")
  RUN_PIDS+=("$LAST_PID")
}

stop_path() {
  for p in "${RUN_PIDS[@]:-}"; do
    [ -n "$p" ] && { kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; }
  done
  RUN_PIDS=()
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT: until something listens on 127.0.0.1:PORT (10 s max).
wait_port() {
  local i
  for i in $(seq 200); do
    ss -Hltn "sport = :$1" | grep -q . && return 0
    sleep 0.05
  done
  echo "bench.sh: nothing listens on port $1; logs:" >&2
  tail -n 5 "$WORK"/*.log >&2 || true
  return 1
}

# cpu_sample: prints "busy total" jiffies summed over all CPUs.
cpu_sample() {
  awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t}' /proc/stat
}

# wait_idle: waits until the machine was >= 90 % idle for 1.5 s (3 samples of 0.5 s), at most
# IDLE_WAIT_MAX s. Sets BUSY=false, or BUSY=true if it gave up (the run is then flagged).
wait_idle() {
  local t0=$SECONDS ok=0 b0 t0j b1 t1j
  BUSY=true
  while [ $((SECONDS - t0)) -lt "$IDLE_WAIT_MAX" ]; do
    read -r b0 t0j < <(cpu_sample); sleep 0.5; read -r b1 t1j < <(cpu_sample)
    if [ $(( (b1 - b0) * 10 )) -le $(( t1j - t0j )) ]; then
      ok=$((ok + 1)); [ $ok -ge 3 ] && { BUSY=false; return; }
    else
      ok=0
    fi
  done
}

# calibrate: seconds for a fixed pure-CPU loop (one core).
calibrate() {
  python3 -c '
import time
t = time.perf_counter(); x = 0
for i in range(15_000_000): x += i
print("%.3f" % (time.perf_counter() - t))'
}

now() { date +%s.%N; }

P_ENTRY=$(free_port); P_MID=$(free_port); P_TARGET=$(free_port); P_ECHO=$(free_port)
while [ "$P_MID" = "$P_ENTRY" ]; do P_MID=$(free_port); done
while [ "$P_TARGET" = "$P_ENTRY" ] || [ "$P_TARGET" = "$P_MID" ]; do P_TARGET=$(free_port); done

head -c 32 /dev/urandom >"$WORK/key"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/tlskey.pem" -out "$WORK/cert.pem" \
  -days 2 -subj /CN=127.0.0.1 >/dev/null 2>&1

# start_path PATH TARGET_PORT: starts the tunnel for PATH in front of TARGET_PORT and sets ENTRY
# (where clients connect) and DAEMON_PIDS (the two tunnel ends, for RSS).
start_path() {
  local path=$1 target=$2
  DAEMON_PIDS=()
  case "$path" in
    tcp) ENTRY=$target; return ;;
    socat2)
      spawn socat-d socat TCP-LISTEN:"$P_MID",bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:"$target"
      DAEMON_PIDS+=("$LAST_PID")
      spawn socat-e socat TCP-LISTEN:"$P_ENTRY",bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:"$P_MID"
      DAEMON_PIDS+=("$LAST_PID") ;;
    stunnel)
      cat >"$WORK/stunnel-srv.conf" <<EOF
foreground = yes
pid =
debug = 3
[srv]
accept = 127.0.0.1:$P_MID
connect = 127.0.0.1:$target
cert = $WORK/cert.pem
key = $WORK/tlskey.pem
EOF
      cat >"$WORK/stunnel-cli.conf" <<EOF
foreground = yes
pid =
debug = 3
[cli]
client = yes
accept = 127.0.0.1:$P_ENTRY
connect = 127.0.0.1:$P_MID
EOF
      spawn stunnel-srv stunnel4 "$WORK/stunnel-srv.conf"; DAEMON_PIDS+=("$LAST_PID")
      spawn stunnel-cli stunnel4 "$WORK/stunnel-cli.conf"; DAEMON_PIDS+=("$LAST_PID") ;;
    ours|ours-f|ours-spiped1|debian|debian-f)
      local bin=$OURS flags=()
      case "$path" in
        ours-f) flags=(-f) ;;
        ours-spiped1) flags=(--protocol spiped1) ;;
        debian) bin=$DEB ;;
        debian-f) bin=$DEB; flags=(-f) ;;
      esac
      # -n 500: room for the idle-memory test's 200 connections (both daemons cap at 500).
      spawn "$path-d" "$bin" -d -F -n 500 -s "[127.0.0.1]:$P_MID" -t "[127.0.0.1]:$target" \
        -k "$WORK/key" -p "$WORK/$path-d.pid" "${flags[@]}"
      DAEMON_PIDS+=("$LAST_PID")
      spawn "$path-e" "$bin" -e -F -n 500 -s "[127.0.0.1]:$P_ENTRY" -t "[127.0.0.1]:$P_MID" \
        -k "$WORK/key" -p "$WORK/$path-e.pid" "${flags[@]}"
      DAEMON_PIDS+=("$LAST_PID") ;;
    *) echo "unknown path $path" >&2; exit 1 ;;
  esac
  wait_port "$P_MID"; wait_port "$P_ENTRY"
  ENTRY=$P_ENTRY
}

RAW="$WORK/raw.jsonl"
: >"$RAW"
record() { # path metric value busy
  echo "{\"path\":\"$1\",\"metric\":\"$2\",\"value\":$3,\"busy\":$4}" >>"$RAW"
}

# BENCH_PATHS="debian tcp" limits the run to some paths (for debugging the harness).
read -r -a PATHS <<<"${BENCH_PATHS:-ours ours-f ours-spiped1 debian debian-f stunnel socat2 tcp}"

echo "== calibration" >&2
CALIB_BEFORE=$(calibrate)
echo "   spin loop: $CALIB_BEFORE s" >&2

# ---- one stream ---------------------------------------------------------------------------
echo "== one stream of $BYTES_H, $RUNS run(s) per path" >&2
for run in $(seq "$RUNS"); do
  for path in "${PATHS[@]}"; do
    spawn sink socat -u TCP-LISTEN:"$P_TARGET",bind=127.0.0.1,reuseaddr OPEN:/dev/null
    sink=$LAST_PID
    wait_port "$P_TARGET"
    start_path "$path" "$P_TARGET"
    wait_idle
    t0=$(now)
    spawn source sh -c "head -c $BYTES /dev/zero | socat -u STDIN TCP:127.0.0.1:$ENTRY"
    src=$LAST_PID
    ( sleep "$STREAM_TIMEOUT"; kill -9 "$sink" 2>/dev/null ) &
    watchdog=$!
    ALL_PIDS+=("$watchdog")
    rc=0; wait "$sink" || rc=$?
    t1=$(now)
    kill "$watchdog" 2>/dev/null || true; wait "$watchdog" 2>/dev/null || true
    src_rc=0; wait "$src" || src_rc=$?
    stop_path
    if [ $rc -ne 0 ] || [ $src_rc -ne 0 ]; then
      echo "   $path run $run: FAILED (sink rc $rc, source rc $src_rc)" >&2
      record "$path" mbps null "$BUSY"
      continue
    fi
    mbps=$(awk -v b="$BYTES" -v a="$t0" -v z="$t1" 'BEGIN{printf "%.1f", b/1e6/(z-a)}')
    echo "   $path run $run: $mbps MB/s$([ "$BUSY" = true ] && echo ' (busy)')" >&2
    record "$path" mbps "$mbps" "$BUSY"
  done
done

# ---- connection rate ----------------------------------------------------------------------
# Runs are interleaved across paths (run 1 of every path, then run 2, ...), as for the stream,
# so a slow period of the machine lands on every path alike instead of on one path's five runs.
echo "== sequential connection rate, $CONN_SECS s x $RUNS run(s) per path" >&2
spawn echo python3 "$HERE/echo.py" "$P_ECHO"
ECHO_PID=$LAST_PID
RUN_PIDS=()   # the echo server outlives the per-path stops
wait_port "$P_ECHO"
for run in $(seq "$RUNS"); do
  for path in "${PATHS[@]}"; do
    start_path "$path" "$P_ECHO"
    python3 "$HERE/connrate.py" "$ENTRY" 0.3 >/dev/null   # warm up (threads, buffers, key pool)
    wait_idle
    out=$(python3 "$HERE/connrate.py" "$ENTRY" "$CONN_SECS")
    rate=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["rate"] if d["failed"]==0 else "null")' "$out")
    echo "   $path run $run: $out$([ "$BUSY" = true ] && echo ' (busy)')" >&2
    record "$path" conns "$rate" "$BUSY"
    stop_path
  done
done

# ---- memory per idle connection pair ------------------------------------------------------
echo "== RSS per idle established connection pair ($IDLE_N connections)" >&2
rss() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
for path in "${PATHS[@]}"; do
  case "$path" in ours|ours-f|ours-spiped1|debian|debian-f) ;; *) continue ;; esac
  start_path "$path" "$P_ECHO"
  python3 "$HERE/connrate.py" "$ENTRY" 0.3 >/dev/null   # warm up (threads, buffers)
  sleep 0.3
  before=$(( $(rss "${DAEMON_PIDS[0]}") + $(rss "${DAEMON_PIDS[1]}") ))
  rm -f "$WORK/stop-idle"
  spawn idle python3 "$HERE/idle.py" "$ENTRY" "$IDLE_N" "$WORK/stop-idle"
  idle=$LAST_PID
  for _ in $(seq 600); do grep -q '^ready' "$WORK/idle.log" 2>/dev/null && break; kill -0 "$idle" 2>/dev/null || break; sleep 0.1; done
  if grep -q '^ready' "$WORK/idle.log"; then
    sleep 0.5
    after=$(( $(rss "${DAEMON_PIDS[0]}") + $(rss "${DAEMON_PIDS[1]}") ))
    kib=$(awk -v a="$after" -v b="$before" -v n="$IDLE_N" 'BEGIN{printf "%.1f", (a-b)/n}')
    echo "   $path: RSS $before -> $after KiB for $IDLE_N connections: $kib KiB per pair" >&2
    record "$path" kib "$kib" false
  else
    echo "   $path: idle connections could not be established:" >&2; tail -3 "$WORK/idle.log" >&2
    record "$path" kib null false
  fi
  touch "$WORK/stop-idle"
  wait "$idle" 2>/dev/null || true
  : >"$WORK/idle.log"
  stop_path
done
kill -9 "$ECHO_PID" 2>/dev/null || true; wait "$ECHO_PID" 2>/dev/null || true

echo "== calibration" >&2
CALIB_AFTER=$(calibrate)
echo "   spin loop: $CALIB_AFTER s" >&2
SLOW=$(awk -v a="$CALIB_BEFORE" -v b="$CALIB_AFTER" 'BEGIN{r=a>b?a/b:b/a; print (r>1.15)?"true":"false"}')

DATE=$(date -u +%Y-%m-%d)
SUFFIX=$([ $QUICK -eq 1 ] && echo "-quick" || true)
mkdir -p "$ROOT/perf/results"
OUT="$ROOT/perf/results/spiped-$DATE$SUFFIX"
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
CPU=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
cat >"$WORK/meta.json" <<EOF
{"date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "commit": "$COMMIT", "quick": $([ $QUICK -eq 1 ] && echo true || echo false),
 "runs": $RUNS, "stream_bytes": $BYTES, "stream_bytes_h": "$BYTES_H", "conn_secs": $CONN_SECS, "idle_conns": $IDLE_N,
 "calib_before": $CALIB_BEFORE, "calib_after": $CALIB_AFTER, "slow_period": $SLOW,
 "cpu": "$CPU", "nproc": $(nproc), "kernel": "$(uname -r)",
 "debian_spiped": "$($DEB -v 2>&1 | head -1)", "stunnel": "$(stunnel4 -version 2>&1 | grep -m1 '^stunnel')",
 "socat": "$(socat -V | awk '/socat version/{print $3; exit}')"}
EOF
python3 "$HERE/report.py" "$RAW" "$WORK/meta.json" "$OUT.md" "$OUT.json"
echo "wrote $OUT.md and $OUT.json" >&2
