#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A move interrupted in every phase keeps exactly one, current copy of the VM.
# tgvm migrate stops itself (TGVM_TEST_STOP_AT) when a phase begins; the test
# then writes a mark into the guest's memory through the network (it lands on
# whichever copy runs), and either sends SIGINT (tgvm settles the move itself)
# or SIGKILL (the next 'tgvm vm list' settles it from the QEMUs). Afterwards:
# one QEMU runs the VM, the guest holds the last mark it acknowledged, never
# rebooted, its writer's counter never went back, its memory verifies, and no
# destination, journal, claim or tap is left. A deliberately wrong recovery
# (resume the source after the destination ran) is shown to fail the oracle.
# The same for nil-migration: a handoff through a shared memory device (its
# lease must follow the VM) and --mode nil interrupted inside its first step.
set -uo pipefail
T=${TGVM:?}
guest_dir=${TGVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tgvm}/guest
[ -r "$guest_dir/vmlinuz" ] || "$TGVM_SRC/scripts/build-guest.sh" >/dev/null || true
[ "$(id -u)" = 0 ] || { echo "skip: needs root for network namespaces"; exit 77; }
[ -r "$guest_dir/vmlinuz" ] || { echo "skip: no test guest"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "skip: no qemu"; exit 77; }

export TGVM_STATE_DIR=$(mktemp -d /tmp/tgvm-itest-state-XXXXXX)
export TGVM_CACHE_DIR=${TGVM_CACHE_DIR:-$HOME/.cache/tgvm}
export TGVM_ACCEL=tcg
export TGVM_NETNS_PREFIX=tgvi$$-
P=$TGVM_NETNS_PREFIX
A=iti-a B=iti-b VM=iti-vm$$
V=$TGVM_STATE_DIR/vms/$VM
fail=0
cleanup() {
  [ -n "${mig:-}" ] && kill -KILL "$mig" 2>/dev/null
  "$T" vm stop $VM >/dev/null 2>&1
  "$T" host down >/dev/null 2>&1
  rm -rf "$TGVM_STATE_DIR" /dev/shm/${P}memdev-cxl0
}
trap cleanup EXIT
check() { if eval "$2"; then echo "ok - $1"; else echo "FAIL - $1"; fail=1; fi; }
qemus() { pgrep -f -- "-name $VM,debug-threads" | wc -l; }
host_of() { "$T" vm list --json | python3 -c "
import json,sys; v=[x for x in json.load(sys.stdin) if x['name']=='$VM']
print(v[0]['host'] if len(v)==1 else 'count=%d' % len(v))"; }

inv=$TGVM_STATE_DIR/inventory.json
cat >"$inv" <<EOF
{"hosts": [{"name": "$A", "profile": "Haswell-v4"}, {"name": "$B", "profile": "Haswell-v4"}],
 "memdevs": [{"name": "cxl0", "capacity": "512M", "hosts": ["$A", "$B"]}]}
EOF
"$T" host up --inventory "$inv" >/dev/null
"$T" vm start $VM --host $A --mem 128M --model auto \
  --workload udp-responder,memwriter:--mib=16:--rate=20 >/dev/null 2>&1
ip=$("$T" vm list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ip"])')

mw() { # one request to the guest's memwriter, retried up to $MW_TRIES seconds
  ip netns exec ${P}probe python3 -c "
import socket,sys,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(1)
end=time.time()+float(sys.argv[3])
while time.time() < end:
    s.sendto(sys.argv[2].encode(),(sys.argv[1],7778))
    try: print(s.recv(4096).decode().strip()); break
    except OSError: pass" "$ip" "$1" "${MW_TRIES:-60}"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
st=$(mw status)
boot=$(field boot_id <<<"$st")
last_counter=$(field counter <<<"$st")
check "guest answers before the moves (memwriter)" "[ -n \"$boot\" ]"
mark=1

# The invariant after a settled move: one VM, one QEMU, on host $1 (any when
# empty), holding mark $2, same boot, counter not back, memory verified,
# nothing left over.
settled_ok() {
  local want_host=$1 want_mark=$2 s h
  h=$(host_of)
  [ -z "$want_host" ] || [ "$h" = "$want_host" ] || { echo "#   host $h, want $want_host"; return 1; }
  [ "$(qemus)" = 1 ] || { echo "#   $(qemus) QEMUs run $VM"; return 1; }
  ! ls -d "$V"/in-* >/dev/null 2>&1 || { echo "#   a destination is left"; return 1; }
  [ ! -e "$V/migration-active.json" ] || { echo "#   the journal is left"; return 1; }
  [ ! -e "$V/migration.claim" ] || { echo "#   the claim is left"; return 1; }
  s=$(MW_TRIES=60 mw status)
  [ "$(field mark <<<"$s")" = "$want_mark" ] || { echo "#   mark $(field mark <<<"$s"), want $want_mark"; return 1; }
  [ "$(field boot_id <<<"$s")" = "$boot" ] || { echo "#   the guest rebooted"; return 1; }
  [ "$(field counter <<<"$s")" -ge "$last_counter" ] || { echo "#   counter went back"; return 1; }
  last_counter=$(field counter <<<"$s")
  grep -q 'MEMWRITER ok' <<<"$(mw verify)" || { echo "#   memory does not verify"; return 1; }
  local taps
  taps=$(( $(ip -n $P$A -o link show 2>/dev/null | grep -c ' t[vw]') + $(ip -n $P$B -o link show 2>/dev/null | grep -c ' t[vw]') ))
  [ "$taps" = 1 ] || { echo "#   $taps taps"; return 1; }
  return 0
}

# Run a move that stops itself at phase $2 (mode args in $3), then $1 (INT or
# KILL; then 'vm list' settles it unless $4 is "norecover"). Sets: from, to,
# rc, acked (the last mark the guest acknowledged).
interrupt_at() {
  local sig=$1 phase=$2 extra=$3 recover=${4:-} s
  from=$(host_of); to=$([ "$from" = $A ] && echo $B || echo $A)
  # the mark before the move
  mark=$((mark + 1)); s=$(mw "mark $mark"); acked=$(field mark <<<"$s")
  local dest="--to $to"
  case $extra in *--recouple* | *--decouple*) dest= to=$from ;; esac # on its own host
  # shellcheck disable=SC2086 # $dest, $extra: options, split
  TGVM_TEST_STOP_AT=$phase "$T" migrate $VM $dest $extra >"$TGVM_STATE_DIR/out" 2>&1 &
  mig=$!
  for _ in $(seq 1 600); do
    [ "$(awk '{print $3}' /proc/$mig/stat 2>/dev/null)" = T ] && break
    kill -0 $mig 2>/dev/null || break
    sleep 0.1
  done
  # While tgvm is stopped, QEMU goes on; a mark sent now lands on whichever
  # copy runs (the fabric points at the destination from its STOP).
  mark=$((mark + 1)); s=$(MW_TRIES=30 mw "mark $mark")
  [ -n "$(field mark <<<"$s")" ] && acked=$(field mark <<<"$s")
  if [ "$sig" = INT ]; then
    kill -INT $mig; kill -CONT $mig
    wait $mig; rc=$?
  else
    kill -KILL $mig; wait $mig 2>/dev/null; rc=137
    if [ "$recover" != norecover ]; then
      "$T" vm list >/dev/null 2>&1 # settles the move from the QEMUs
      # a postcopy past its switch is settled once its source sent every page
      for _ in $(seq 1 120); do
        [ -e "$V/migration-active.json" ] || break
        sleep 1
        "$T" vm list >/dev/null 2>&1
      done
    fi
  fi
  mig=
}

for phase in check prepare precopy pause last-copy switch start cleanup; do
  for sig in INT KILL; do
    interrupt_at $sig $phase ""
    case $phase in
    check | prepare | precopy) want=$from ;; # before the destination has the VM
    switch | start | cleanup) want=$to ;;    # the destination ran guest code
    *) want= ;;                               # QEMU decides: either, consistently
    esac
    if [ "$sig" = INT ]; then
      case $phase in
      check | prepare | precopy) check "SIGINT in $phase: cancelled, exit 130" "[ $rc = 130 ] && grep -q 'cancelled' $TGVM_STATE_DIR/out" ;;
      switch | start | cleanup) check "SIGINT in $phase: completed, exit 0" "[ $rc = 0 ] && grep -q 'completed' $TGVM_STATE_DIR/out" ;;
      *) check "SIGINT in $phase: settled one way (exit $rc)" "[ $rc = 0 ] || [ $rc = 130 ]" ;;
      esac
    fi
    check "$sig in $phase (precopy, $from -> $to): one current VM on ${want:-either host}" "settled_ok '$want' $acked"
  done
done
check "the decisions are in the VM's log" "grep -q 'orphaned move settled: completed' $V/tgvm.log && grep -q 'orphaned move settled: rolled-back' $V/tgvm.log"
check "the console log is kept whole, with a line per move" "[ \$(grep -c 'VM moved from host' $V/serial.log) -ge 6 ]"

# Postcopy, every phase: before the switch a signal cancels; from the
# source's STOP (the switch to postcopy) the source holds pages the
# destination needs, and the move is finished (SIGINT: by tgvm; SIGKILL: left
# running, settled by a later 'vm list' once the source sent every page).
for phase in check prepare precopy pause switch start postcopy cleanup; do
  for sig in INT KILL; do
    interrupt_at $sig $phase "--mode postcopy --max-bandwidth 8M --no-probe"
    case $phase in check | prepare | precopy) want=$from ;; *) want=$to ;; esac
    if [ "$sig" = INT ]; then
      case $phase in
      check | prepare | precopy) check "postcopy, SIGINT in $phase: cancelled, exit 130" "[ $rc = 130 ]" ;;
      *) check "postcopy, SIGINT in $phase: the move is finished, exit 0" "[ $rc = 0 ]" ;;
      esac
    fi
    check "postcopy, $sig in $phase ($from -> $to): one current VM on $want" "settled_ok $want $acked"
  done
done

# The oracle can fail: recover the wrong way (kill the destination that ran,
# resume the stale source) and the mark written after the switch is gone.
interrupt_at KILL start "" norecover
d=$(ls -d "$V"/in-* | head -1)
dtap=$(python3 -c "import json; print(json.load(open('$d/config.json'))['tap'])")
kill -KILL "$(cat "$d/pid")"
ip -n "$P$to" link del "$dtap" 2>/dev/null # the wrong recovery's own mess, not tgvm's
python3 - "$V/qmp.sock" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
f.readline()
# resume it, and let the bridges learn where it is again (RARP from its tap)
for cmd, args in (("qmp_capabilities", {}), ("cont", {}),
                  ("announce-self", {"initial": 50, "max": 550, "rounds": 5, "step": 100})):
    f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n"); f.flush()
    while "return" not in json.loads(f.readline()): pass
PY
sleep 1
check "after the wrong recovery the stale source answers (so the oracle reads it)" "MW_TRIES=30 mw status | grep -q 'MEMWRITER status'"
rm -rf "$d" "$V/migration-active.json" "$V/migration.claim"
check "a wrong recovery (resume the source) fails the oracle" "! settled_ok '' $acked"

# nil-migration. A VM on the shared device, handed over and interrupted.
"$T" vm stop $VM >/dev/null
"$T" vm start $VM --host $A --mem 128M --memdev cxl0 \
  --workload udp-responder,memwriter:--mib=16:--rate=20 >/dev/null 2>&1
ip=$("$T" vm list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ip"])')
st=$(mw status); boot=$(field boot_id <<<"$st"); last_counter=$(field counter <<<"$st")
check "guest on the shared device answers" "[ -n \"$boot\" ]"
for phase in check prepare precopy pause last-copy switch start cleanup; do
  for sig in INT KILL; do
    interrupt_at $sig $phase "--mode shared"
    case $phase in
    check | prepare | precopy) want=$from ;;
    switch | start | cleanup) want=$to ;;
    *) want= ;; # QEMU decides: either, consistently
    esac
    check "$sig in the handoff's $phase ($from -> $to): one current VM on ${want:-either host}" "settled_ok '$want' $acked"
  done
done
from=$(host_of); to=$([ "$from" = $A ] && echo $B || echo $A)
"$T" migrate $VM --to $to --mode shared >/dev/null 2>&1; rc=$?
check "after the interrupted handoffs the lease follows the VM: a handoff back works" "[ $rc = 0 ] && settled_ok $to $acked"
# --mode nil starts with a decouple (on the VM's own host): interrupted there.
"$T" migrate $VM --recouple >/dev/null 2>&1
check "recouple: private RAM again" "[ ! -e /dev/shm/${P}memdev-cxl0/$VM.ram ]"
interrupt_at INT precopy "--mode nil"
check "--mode nil, SIGINT in the decouple: cancelled, exit 130, the device's space back" \
  "[ $rc = 130 ] && [ ! -e /dev/shm/${P}memdev-cxl0/$VM.ram ] && settled_ok $from $acked"
interrupt_at KILL switch "--mode nil"
check "--mode nil, SIGKILL in the decouple's switch: settled on the device, on $from" \
  "settled_ok $from $acked && [ -e /dev/shm/${P}memdev-cxl0/$VM.ram ]"
# The recouple (back to private RAM): cancelled, it stays on the device;
# completed by a later process, the device's file is freed all the same.
interrupt_at INT precopy "--recouple"
check "recouple, SIGINT in precopy: cancelled, still on the device" \
  "[ $rc = 130 ] && settled_ok $from $acked && [ -e /dev/shm/${P}memdev-cxl0/$VM.ram ]"
interrupt_at KILL cleanup "--recouple"
check "recouple, SIGKILL in cleanup: completed by vm list, private RAM, the device's file freed" \
  "settled_ok $from $acked && [ ! -e /dev/shm/${P}memdev-cxl0/$VM.ram ]"

exit $fail
