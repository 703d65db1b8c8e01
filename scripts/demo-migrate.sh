#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Demo act: three simulated hosts of different CPU generations (namespaces on
# this machine, profiles from examples/lab.json), a VM started with the minimal
# model its software needs, a migration refused because the destination lacks
# a needed feature, and a live migration to one that has it, with timeline,
# blackouts and a picture. Cleans up after itself.
# Its hosts, VMs and state are its own (a state directory and namespace
# prefix of this run, never the user's), and all of them go when it ends, also
# when it fails or is interrupted.
set -uo pipefail
tgvm=${1:?usage: demo-migrate.sh TGVM}
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/out"
if [ "$(id -u)" != 0 ]; then
  echo "(skipped: simulated hosts are network namespaces and need root)"
  exit 0
fi
mkdir -p "$out"
VM=web
state=""
cleanup() {
  local rc=$?
  # A second Ctrl-C must not cut the cleanup short.
  trap '' INT TERM HUP
  "$tgvm" vm stop "$VM" >/dev/null 2>&1
  # Takes every namespace of this run's prefix and what runs in them.
  "$tgvm" host down >/dev/null 2>&1
  [ -z "$state" ] || rm -rf "$state"
  exit "$rc"
}
trap cleanup EXIT
# Stop at the first Ctrl-C even when the command it hit exits by itself.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
state=$(mktemp -d /tmp/tgvm-demo-state-XXXXXX) || exit 1
export TGVM_STATE_DIR=$state
# At most 12 characters (pid_max is 2^22: 6 hex digits).
TGVM_NETNS_PREFIX=$(printf 'tgvmm%x-' $$)
export TGVM_NETNS_PREFIX
export TGVM_ACCEL=${TGVM_ACCEL:-tcg}
say() { printf '\n\033[36m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

run "$tgvm" host up --inventory "$here/examples/lab.json" || exit 1
say "$tgvm vm start $VM --host haswell --mem 256M --model auto"
"$tgvm" vm start $VM --host haswell --mem 256M --model auto \
  --workload udp-responder,memwriter:--mib=32:--rate=20 || exit 1
printf 'waiting for the guest to boot'
for _ in $(seq 1 120); do
  "$tgvm" vm ping $VM --duration 0.3 --interval-us 1000 >/dev/null 2>&1 && break
  printf .
  sleep 1
done
echo
run "$tgvm" vm list
run "$tgvm" vm ping $VM --duration 1 --interval-us 1000
say "$tgvm migrate $VM --to westmere    # Westmere has no BMI2"
"$tgvm" migrate $VM --to westmere
echo "(exit status $?: refused, nothing changed; the VM still runs on haswell)"
run "$tgvm" migrate $VM --to broadwell --svg "$out/migration-timeline.svg"
rsvg-convert -f png -o "$out/migration-timeline.png" "$out/migration-timeline.svg" 2>/dev/null &&
  echo "timeline picture: $out/migration-timeline.png"
run "$tgvm" vm list
exit 0
