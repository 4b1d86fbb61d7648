#!/usr/bin/env bash
# End-to-end: the DPDK balancer in tunnel (IPIP) mode between real namespaces, plus the exception
# path (ssh to the host address through the TAP). Topology and helpers: tests/e2e/lib/dataplane.sh.
# Needs root, hugepages (tests/hugepages.sh), a release build, openssh-server, python3, curl.
set -euo pipefail
source "$(dirname "$0")/lib/dataplane.sh"

dp_lb_scenario tunnel

log "tunnel: ssh to the host address through the exception path"
need sshd
need ssh-keygen
ssh-keygen -q -t ed25519 -N '' -f "$WORK/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/userkey"
cp "$WORK/userkey.pub" "$WORK/authorized_keys"
cat >"$WORK/sshd_config" <<EOT
ListenAddress $HOST_IP
Port 22
HostKey $WORK/hostkey
PermitRootLogin prohibit-password
AuthorizedKeysFile $WORK/authorized_keys
StrictModes no
UsePAM no
PidFile $WORK/sshd.pid
EOT
mkdir -p /run/sshd
before=$(stats_get "s['verdicts']['to_kernel']")
ip netns exec "$NS_HOST" /usr/sbin/sshd -D -e -f "$WORK/sshd_config" 2>"$WORK/sshd.log" &
PIDS+=($!)
wait_for 10 "sshd on $HOST_IP:22" ip netns exec "$NS_HOST" bash -c "exec 3<>/dev/tcp/$HOST_IP/22"
got=$(ip netns exec "$NS_CL" ssh -i "$WORK/userkey" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
  -o BatchMode=yes -o ConnectTimeout=10 "root@$HOST_IP" echo via-exception-path 2>"$WORK/ssh.log") \
  || { cat "$WORK/ssh.log" >&2; fail "ssh to the host address failed"; }
[ "$got" = via-exception-path ] || fail "ssh printed '$got'"
after=$(stats_get "s['verdicts']['to_kernel']")
from=$(stats_get "s['verdicts']['from_kernel']")
((after > before && from > 0)) || fail "exception path counters did not move (to_kernel $before -> $after, from_kernel $from)"
log "ssh through the TAP works (to_kernel $before -> $after, from_kernel $from)"
log "PASS dataplane-tunnel"
