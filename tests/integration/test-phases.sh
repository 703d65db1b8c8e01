#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The migration pipeline against scripted QEMUs (fake-qemu.py): in each phase
# a fault is injected (a QMP error reply, the monitor closing, a command that
# never answers, the destination process exiting) and the move must end as
# the phase's rule says: before the destination runs, rolled back (exit 3,
# the VM running once on its source, which got migrate_cancel, and cont if it
# was paused, and no destination, journal or claim left); after the
# destination resumed, completed (the source never resumed); in postcopy
# left open until the source has sent every page, then completed by a later
# 'migrate status'. The phase that settled the move and the verdict are
# read from migration.json, what the QEMUs were told from the fakes'
# transcript. No guest boots: seconds a case, except those that wait out
# tgvm's timeouts (5 s QMP, 15 s resume). TGVM_TEST_CASES=REGEX runs some.
set -uo pipefail
T=${TGVM:?}
SRC=${TGVM_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
[ "$(id -u)" = 0 ] || { echo "skip: needs root for network namespaces"; exit 77; }
real=$(command -v qemu-system-x86_64) || { echo "skip: no qemu (the fake asks it for CPU models)"; exit 77; }

TGVM_STATE_DIR=$(mktemp -d /tmp/tgvm-phases-state-XXXXXX)
export TGVM_STATE_DIR
export TGVM_QEMU=$SRC/tests/integration/fake-qemu.py
export FAKE_QEMU_REAL=$real
export TGVM_ACCEL=tcg
export TGVM_NETNS_PREFIX=tgvp$$-
W=$TGVM_STATE_DIR/fake
A=ph-a B=ph-b VM=ph-vm$$
fail=0
cleanup() {
  "$T" vm stop $VM >/dev/null 2>&1
  "$T" host down >/dev/null 2>&1
  pkill -9 -f -- "-name $VM,debug-threads" 2>/dev/null
  rm -rf "$TGVM_STATE_DIR"
}
trap cleanup EXIT
check() { if eval "$2"; then echo "ok - $1"; else echo "FAIL - $1"; fail=1; fi; }
fakes() { pgrep -f -- "-name $VM,debug-threads" | wc -l; }
vmdir=$TGVM_STATE_DIR/vms/$VM

# The VM runs on host $1 and nowhere else: vm list says so, one QEMU, and
# nothing of the move is left (destination directory, journal, claim).
runs_once_on() {
  "$T" vm list --json | python3 -c "
import json,sys; v=[x for x in json.load(sys.stdin) if x['name']=='$VM']
sys.exit(0 if v and v[0]['host']=='$1' and v[0]['state']=='running' and not v[0]['migrating'] else 1)" &&
    [ "$(fakes)" = 1 ] && ! ls -d "$vmdir"/in-* >/dev/null 2>&1 &&
    [ ! -e "$vmdir/migration-active.json" ] && [ ! -e "$vmdir/migration.claim" ]
}

# Where the move was settled and how: "PHASE VERDICT" from the journal of a
# move left open, else from migration.json.
settled() {
  local f=$vmdir/migration.json
  [ -e "$vmdir/migration-active.json" ] && f=$vmdir/migration-active.json
  python3 -c "
import json; s=json.load(open('$f')).get('settled') or {}
print(s.get('at_phase', '-'), s.get('verdict', '-').replace(' ', '-'))" 2>/dev/null
}

# What the QEMUs were told, from the transcript (sorted by time): $1 is
# "rollback", "complete" or "not-resumed" (complete, the source may live on).
transcript_says() {
  python3 - "$W/transcript" "$1" <<'EOF'
import sys
lines = sorted((l.split(" ", 4) + [""])[:5] for l in open(sys.argv[1]) if l.strip())
lines = [(float(t), role, kind, rest.strip()) for t, role, _pid, kind, rest in lines]
def cmds(role, name):
    return [t for t, r, k, d in lines if r == role and k == "cmd" and d.split(" ")[0] == name]
resumed = [t for t, r, k, d in lines if r == "dst" and k == "emit" and d == "RESUME"]
migrate, cancel, cont = cmds("src", "migrate"), cmds("src", "migrate_cancel"), cmds("src", "cont")
state = "running"  # the source's run state, replayed
for t, r, k, d in lines:
    if r == "src" and k == "run":
        state = d.split(" -> ")[1]
    if r == "src" and k == "exit":
        state = "exited"
bad = []
if sys.argv[2] == "rollback":
    if resumed:
        bad.append("the destination resumed")
    if migrate and not [t for t in cancel if t > migrate[0]]:
        bad.append("the source was not sent migrate_cancel after migrate")
    if state != "running":
        bad.append("the source ends %s" % state)
    paused = [t for t, r, k, d in lines if r == "src" and k == "run" and d.endswith("postmigrate")]
    if paused and not [t for t in cont if t > paused[0]]:
        bad.append("the source completed its side but was never sent cont")
else:
    if not resumed:
        bad.append("the destination never resumed")
    if resumed and [t for t in cont if t > resumed[0]]:
        bad.append("the source was sent cont after the destination resumed")
    if state != "exited" and sys.argv[2] == "complete":
        bad.append("the source QEMU is still there (%s)" % state)
for b in bad:
    print("#   transcript: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

"$T" host up $A $B >/dev/null || { echo "FAIL - host up"; exit 1; }

# The fakes meet in one directory for the whole run (the source fake reads it
# from its environment): each case clears it and keeps its transcript.
export FAKE_QEMU_DIR=$W
mkdir -p "$W"

# One case: NAME PHASE OUTCOME RC FAULT. The move to $B runs with the fault,
# then the checks. A VM rolled back to $A takes the next case as it is (so a
# rollback must leave it fit to move again); otherwise it starts afresh.
case_() {
  local name=$1 phase=$2 outcome=$3 want_rc=$4 fault=$5 rc t0 t1 where
  # TGVM_TEST_CASES: a regular expression, to run only the cases it matches.
  [[ -z ${TGVM_TEST_CASES:-} || $name =~ $TGVM_TEST_CASES ]] || return 0
  if ! runs_once_on $A; then
    "$T" vm stop $VM >/dev/null 2>&1
    if ! "$T" vm start $VM --host $A --mem 128M --kernel "$SRC/README.md" --model qemu64 >/dev/null; then
      echo "FAIL - $name: vm start"; fail=1; return
    fi
  fi
  rm -f "$W/stage" "$W/dst-pid"
  : >"$W/transcript"
  echo "$fault" >"$W/scenario"
  t0=$(date +%s%N)
  # shellcheck disable=SC2086 # $MIGARGS: options, split
  "$T" migrate $VM --to $B --no-probe ${MIGARGS:-} >"$W/out" 2>&1; rc=$?
  t1=$(date +%s%N)
  where=$(settled)
  echo "# $name ($fault): rc $rc, settled: ${where:-none}, $(( (t1 - t0) / 1000000 )) ms"
  head -n 1 "$W/out" | sed "s/^/#   /"
  [ -z "$fault" ] || grep -q " fault " "$W/transcript" ||
    { echo "FAIL - $name: the fault was never injected"; fail=1; }
  check "$name: exit code $want_rc" "[ $rc = $want_rc ]"
  if [ "$outcome" = rollback ]; then
    check "$name: rolled back in $phase" "[ \"$where\" = \"$phase rolled-back\" ]"
    check "$name: the VM runs once on its source, nothing left" "runs_once_on $A"
    check "$name: the source was cancelled and runs again; the destination never ran" \
      "transcript_says rollback"
  elif [ "$outcome" = postcopy-goes-on ]; then
    # Postcopy broke after the switch: the move stays open (journal) while
    # the source still has pages; a later call settles it, completed.
    check "$name: left to postcopy in $phase, the journal kept" \
      "[ \"$where\" = \"$phase postcopy-still-running\" ] && [ -e \"$vmdir/migration-active.json\" ]"
    for _ in $(seq 1 20); do
      "$T" migrate status $VM >/dev/null 2>&1
      [ -e "$vmdir/migration-active.json" ] || break
      sleep 0.5
    done
    check "$name: settled later: the VM runs once on the destination, nothing left" "runs_once_on $B"
    check "$name: the source was never resumed, it quit" "transcript_says complete"
  elif [ "$outcome" = lost ]; then
    # The destination ran the guest and died: the VM is lost, said so; its
    # source stays paused (not resumed: that would take the guest back in
    # time), and nothing of the move is left.
    check "$name: settled lost in $phase" "[[ \"$where\" =~ ^($phase)\ lost$ ]]"
    check "$name: the source was never resumed" "transcript_says not-resumed"
    check "$name: the message says the VM is lost" "grep -q 'is lost' \"$W/out\""
    check "$name: no destination, journal or claim left" \
      "! ls -d \"$vmdir\"/in-* >/dev/null 2>&1 && [ ! -e \"$vmdir/migration-active.json\" ] && [ ! -e \"$vmdir/migration.claim\" ]"
  else
    [ "$phase" = - ] || check "$name: completed from $phase" "[ \"$where\" = \"$phase completed\" ]"
    check "$name: the VM runs once on the destination, nothing left" "runs_once_on $B"
    check "$name: the source was never resumed, it quit" "transcript_says complete"
  fi
  mv "$W/transcript" "$W/$name.transcript"
  mv "$W/out" "$W/$name.out"
  [ "$outcome" = rollback ] && return
  "$T" vm stop $VM >/dev/null 2>&1
  [ "$(fakes)" = 0 ] || { echo "FAIL - $name: a QEMU outlived vm stop"; fail=1; pkill -9 -f -- "-name $VM,debug-threads"; }
}

# The fake plays a move first, without faults.
case_ none - complete 0 ""
# prepare: the destination exists, nothing has been sent.
case_ prepare-error prepare rollback 3 "dst prepare migrate-incoming error"
case_ prepare-close prepare rollback 3 "src prepare getfd close"
case_ prepare-hang prepare rollback 3 "dst prepare migrate-set-capabilities hang"
case_ prepare-exit prepare rollback 3 "dst prepare getfd exit"
# precopy: the source sends, the VM runs there.
case_ precopy-error precopy rollback 3 "src prepare migrate error"
case_ precopy-error-sample precopy rollback 3 "src active query-migrate error"
case_ precopy-close precopy rollback 3 "src active query-migrate close"
case_ precopy-hang precopy rollback 3 "src active query-migrate hang"
case_ precopy-exit precopy rollback 3 "dst active - exit"
# last-copy: the source has stopped the VM (STOP) and sends what is left.
case_ last-copy-error last-copy rollback 3 "src stopped query-migrate error"
case_ last-copy-close last-copy rollback 3 "src stopped query-migrate close"
case_ last-copy-hang last-copy rollback 3 "src stopped query-migrate hang"
case_ last-copy-exit last-copy rollback 3 "dst stopped - exit"
# switch: the source has sent everything; the destination does not resume
# (its every command fails; it dies). A monitor that closes there does not
# stop QEMU resuming the guest, so that move completes: asked again, the
# destination runs.
case_ switch-error switch rollback 3 "dst completed - error"
case_ switch-exit switch rollback 3 "dst completed - exit"
case_ switch-close switch complete 3 "dst completed - close"
# After RESUME the destination has run the guest: the move completes.
case_ cleanup-error - complete 0 "src resumed query-migrate error"
case_ cleanup-close - complete 0 "src resumed quit close"
case_ cleanup-hang - complete 0 "src resumed quit hang"
# postcopy: the destination runs the guest and pulls pages from the source.
MIGARGS="--mode postcopy" case_ postcopy-none - complete 0 ""
MIGARGS="--mode postcopy" case_ postcopy-error postcopy postcopy-goes-on 3 "src postcopy-running query-migrate error"
MIGARGS="--mode postcopy" case_ postcopy-close postcopy postcopy-goes-on 3 "src postcopy-running query-migrate close"
MIGARGS="--mode postcopy" case_ postcopy-hang postcopy postcopy-goes-on 3 "src postcopy-running query-migrate hang"
# The destination dies in postcopy: the VM is lost (the source lacks what
# the guest wrote there); the source must not run it again.
# (Seen in the start phase, which watches the destination half a second, or
# in postcopy, whichever the timing gives.)
MIGARGS="--mode postcopy" case_ postcopy-exit "start|postcopy" lost 3 "dst postcopy-running - exit"
# The destination dies right after RESUME: the same, found before cleanup
# gives the source up (also without the probe).
case_ start-exit start lost 3 "dst resumed - exit"

"$T" host down $A $B >/dev/null
check "nothing left" "[ \"\$(fakes)\" = 0 ] && ! ip netns list | grep -q '^$TGVM_NETNS_PREFIX$A\\|^$TGVM_NETNS_PREFIX$B'"
exit $fail
