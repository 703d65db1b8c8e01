#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nil-migration in the demo: two simulated hosts sharing a memory device
# (a tmpfs region standing for CXL memory) and a third that does not; a VM
# whose memwriter keeps rewriting 16 MiB goes decouple -> handoff -> recouple
# (`tgvm migrate --mode nil`), a handoff to the third host is refused, and the
# guest's pattern verifies after the move. The VM is a microvm (virtio-mmio, no
# PCI): the least device state to hand over. Usage: scripts/demo-nil.sh TGVM
# Its hosts, VMs, state and memory device are its own and go when it ends,
# also when it fails or is interrupted.
set -euo pipefail
T=${1:?usage: demo-nil.sh path/to/tgvm}
[ "$(id -u)" = 0 ] || { echo "(skipped: simulated hosts need root)"; exit 0; }
# At most 12 characters (pid_max is 2^22: 6 hex digits); a longer prefix
# would make tgvm fall back to the user's own "tgvm-".
P=$(printf 'tgvmn%x-' $$)
state=""
cleanup() {
  local rc=$?
  # A second Ctrl-C must not cut the cleanup short.
  trap '' INT TERM HUP
  "$T" vm stop demo-nil >/dev/null 2>&1 || true
  "$T" host down >/dev/null 2>&1 || true
  rm -f "/dev/shm/${P}memdev-cxl0"
  [ -z "$state" ] || rm -rf "$state"
  exit "$rc"
}
trap cleanup EXIT
# Stop at the first Ctrl-C even when the command it hit exits by itself.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
state=$(mktemp -d /tmp/tgvm-demo-nil-XXXXXX)
export TGVM_STATE_DIR=$state TGVM_NETNS_PREFIX=$P TGVM_ACCEL=${TGVM_ACCEL:-tcg}
inv=$TGVM_STATE_DIR/inventory.json
cat >"$inv" <<'JSON'
{"hosts": [{"name": "rome", "profile": "EPYC-Rome-v2"},
           {"name": "milan", "profile": "EPYC-Milan-v1"},
           {"name": "genoa", "profile": "EPYC-Milan-v1"}],
 "memdevs": [{"name": "cxl0", "capacity": "1G", "hosts": ["rome", "milan"]}]}
JSON
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
ask() {
  ip netns exec "${P}probe" python3 - "$ip" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
for _ in range(10):
    s.sendto(sys.argv[2].encode(), (sys.argv[1], 7778))
    try:
        print(s.recv(4096).decode(errors="replace")); break
    except socket.timeout:
        pass
PY
}

say "\$ tgvm host up --inventory inventory.json   (rome and milan share cxl0; genoa does not)"
"$T" host up --inventory "$inv"
"$T" fleet --inventory "$inv"
say "\$ tgvm vm start demo-nil --host rome --mem 128M --machine microvm   (private RAM; memwriter rewrites 16 MiB)"
"$T" vm start demo-nil --host rome --mem 128M --machine microvm \
  --append "console=ttyS0 panic=-1 quiet cryptomgr.notests no_timer_check tgvm.workload=udp-responder,memwriter:--mib=16:--rate=4"
ip=$("$T" vm list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ip"])')
for _ in $(seq 1 120); do s=$(ask status); [ -n "$s" ] && break; sleep 1; done
echo "guest: $s"
say "\$ tgvm migrate demo-nil --to genoa --mode nil   (refused: genoa maps no device with rome)"
"$T" migrate demo-nil --to genoa --mode nil || true
say "\$ tgvm migrate demo-nil --to milan --mode nil --breakdown"
"$T" migrate demo-nil --to milan --mode nil --breakdown
say "After the move the guest verifies its 16 MiB pattern (same boot, counter still growing):"
ask verify
ask status
