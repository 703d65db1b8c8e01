#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Demo act: three simulated hosts of different CPU generations (namespaces on
# this machine, profiles from examples/lab.json), a VM started with the minimal
# model its software needs, a migration refused because the destination lacks
# a needed feature, and a live migration to one that has it, with timeline,
# blackouts and a picture. Cleans up after itself.
set -uo pipefail
tgvm=${1:?usage: demo-migrate.sh TGVM}
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/out"
mkdir -p "$out"
export TGVM_NETNS_PREFIX=${TGVM_NETNS_PREFIX:-tgvmdemo-}
export TGVM_STATE_DIR=${TGVM_STATE_DIR:-$(mktemp -d /tmp/tgvm-demo-state-XXXXXX)}
export TGVM_ACCEL=${TGVM_ACCEL:-tcg}
if [ "$(id -u)" != 0 ]; then
  echo "(skipped: simulated hosts are network namespaces and need root)"
  exit 0
fi
VM=web
cleanup() {
  "$tgvm" vm stop $VM >/dev/null 2>&1
  "$tgvm" host down >/dev/null 2>&1
}
trap cleanup EXIT
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
