#!/usr/bin/env bash
# The project's one test command (README "Quick start"). Run as root on Debian 12:
#   sudo bash tests/run.sh            # everything: deps, unit, integration, e2e, fuzz smoke
#   sudo bash tests/run.sh --no-deps  # skip apt-get (packages already installed)
#
# It installs every system package it needs, sets up hugepages, builds the workspace and runs:
#   1. cargo test over the workspace, including the #[ignore]d tests that need root, real peers
#      (sshd, Debian's spiped, an MTA, nginx) or DPDK;
#   2. the end-to-end scripts in tests/e2e/*.sh (network namespaces, real DPDK EAL);
#   3. a bounded cargo-fuzz run of every fuzz target.
# It ends with one line "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOG_DIR=${LOG_DIR:-$ROOT/target/test-logs}
mkdir -p "$LOG_DIR"

PACKAGES=(
  # DPDK and the bindgen toolchain
  libdpdk-dev dpdk dpdk-dev pkg-config libclang-dev clang libpcap-dev libssl-dev
  # real peers for spiped and the end-to-end tests
  spiped openssh-server openssh-client stunnel4 socat nginx-light curl python3
  # network tooling
  iproute2 ethtool iputils-ping tcpdump tshark netcat-openbsd procps psmisc
)

want_deps=1
for a in "$@"; do
  case "$a" in
    --no-deps) want_deps=0 ;;
    *) echo "usage: tests/run.sh [--no-deps]" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/run.sh: must run as root (namespaces, hugepages, apt-get)" >&2
  exit 2
fi

if [ $want_deps -eq 1 ]; then
  echo "== installing system packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >"$LOG_DIR/apt.log" 2>&1 || { tail -20 "$LOG_DIR/apt.log"; exit 1; }
  apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>"$LOG_DIR/apt.log" 2>&1 \
    || { tail -20 "$LOG_DIR/apt.log"; exit 1; }
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked >"$LOG_DIR/cargo-fuzz-install.log" 2>&1 \
      || { tail -20 "$LOG_DIR/cargo-fuzz-install.log"; exit 1; }
  fi
fi
# Services the packages start on install must not hold the ports our tests use.
systemctl stop nginx ssh stunnel4 2>/dev/null || true

echo "== hugepages"
bash "$ROOT/tests/hugepages.sh" 512 || echo "hugepages unavailable: DPDK tests fall back to --no-huge"

passed=0
failed=0
failed_names=()
run_step() { # name, command...
  local name=$1; shift
  echo "== $name"
  local t0=$SECONDS
  if "$@" >"$LOG_DIR/$name.log" 2>&1; then
    passed=$((passed + 1)); echo "   ok ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); failed_names+=("$name"); echo "   FAILED ($((SECONDS - t0)) s); last lines of $LOG_DIR/$name.log:"
    tail -40 "$LOG_DIR/$name.log" | sed 's/^/   | /'
  fi
}

export CARGO_TERM_COLOR=never
run_step build cargo build --workspace --all-targets --release
run_step cargo-test cargo test --workspace --release -- --include-ignored --test-threads=2
for t in tests/e2e/*.sh; do
  [ -e "$t" ] || continue
  run_step "e2e-$(basename "$t" .sh)" bash "$t"
done
run_step fuzz-smoke bash "$ROOT/fuzz/smoke.sh"

grep -h "test result:" "$LOG_DIR/cargo-test.log" 2>/dev/null | sed 's/^/   /' || true
echo
if [ $failed -ne 0 ]; then echo "failed steps: ${failed_names[*]}"; fi
echo "tests: $passed passed, $failed failed"
[ $failed -eq 0 ]
