#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Drives tgvm host up, vm start and migrate as a user would, with a 128 MiB
# TCG guest between two simulated hosts: a refused migration (unknown host, a
# feature the destination lacks), a destination killed during precopy, a
# cancel, then a successful migration; after each failure the VM must still
# run on its source and no QEMU, tap or namespace may be left behind. Then the
# same guest on the microvm machine kind (virtio-mmio NIC) moves by precopy
# there and back with its memory intact.
set -uo pipefail
T=${TGVM:?}
# The bundled guest (built by scripts/build-guest.sh into the cache).
guest_dir=${TGVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tgvm}/guest
[ -r "$guest_dir/vmlinuz" ] || "$TGVM_SRC/scripts/build-guest.sh" >/dev/null || true
kernel=${TGVM_TEST_KERNEL:-$guest_dir/vmlinuz}
initrd=${TGVM_TEST_INITRD:-$guest_dir/initramfs.img}
[ "$(id -u)" = 0 ] || { echo "skip: needs root for network namespaces"; exit 77; }
[ -r "$kernel" ] && [ -r "$initrd" ] || { echo "skip: no test guest ($kernel)"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "skip: no qemu"; exit 77; }

export TGVM_STATE_DIR=$(mktemp -d /tmp/tgvm-itest-state-XXXXXX)
export TGVM_CACHE_DIR=${TGVM_CACHE_DIR:-$HOME/.cache/tgvm}
export TGVM_ACCEL=tcg
# Own namespace names, so that another run on this machine never meets this one.
export TGVM_NETNS_PREFIX=tgvm$$-
P=$TGVM_NETNS_PREFIX
A=itm-a B=itm-b C=itm-c VM=itm-vm$$
fail=0
cleanup() {
  "$T" vm stop $VM >/dev/null 2>&1
  "$T" host down >/dev/null 2>&1
  rm -rf "$TGVM_STATE_DIR"
}
trap cleanup EXIT
check() { if eval "$2"; then echo "ok - $1"; else echo "FAIL - $1"; fail=1; fi; }
jq_() { python3 -c "import json,sys; j=json.load(sys.stdin); $1"; }
qemus() { pgrep -f -- "-name $VM,debug-threads" | wc -l; }
src_ok() { # the VM runs on host $1 with exactly one QEMU, no destination left
  "$T" vm list --json | python3 -c "
import json,sys; v=[x for x in json.load(sys.stdin) if x['name']=='$VM']
sys.exit(0 if v and v[0]['host']=='$1' and v[0]['state']=='running' and not v[0]['migrating'] else 1)" &&
  [ "$(qemus)" = 1 ] && ! ls -d "$TGVM_STATE_DIR/vms/$VM"/in-* >/dev/null 2>&1 &&
  [ "$(ip -n $P$B link show 2>/dev/null | grep -c ' tv')" = "$([ "$1" = "$B" ] && echo 1 || echo 0)" ]
}

"$T" host up $A $B >/dev/null
check "hosts are namespaces" "ip netns list | grep -q '^$P$A' && ip netns list | grep -q '^$P$B'"
"$T" vm start $VM --host $A --mem 128M --kernel "$kernel" --initrd "$initrd" >/dev/null
check "vm start" "src_ok $A"
check "qmp socket is 0600" "[ \"\$(stat -c %a $TGVM_STATE_DIR/vms/$VM/qmp.sock)\" = 600 ]"

out=$("$T" migrate $VM --to nowhere 2>&1); rc=$?
check "unknown host refused" "[ $rc = 2 ] && grep -q \"host 'nowhere' is not up\" <<<\"\$out\""
check "unknown host changes nothing" "src_ok $A"
out=$("$T" host down nowhere 2>&1); rc=$?
check "host down of a host that is not up says so" "[ $rc = 2 ] && grep -q \"host 'nowhere' is not up\" <<<\"\$out\""
out=$("$T" migrate $VM --to $B --svg /nonexistent/dir/t.svg 2>&1); rc=$?
check "an unwritable --svg path stops the move before it starts" "[ $rc = 2 ] && grep -q \"cannot write in '/nonexistent/dir'\" <<<\"\$out\" && src_ok $A"

# A VM given avx512f cannot start on a TCG host (TCG has no AVX-512), nor go
# there from a host whose profile (an Ice Lake server) has it.
"$T" vm stop $VM
out=$("$T" vm start $VM --host $A --mem 128M --model kvm64,+avx512f --kernel "$kernel" --initrd "$initrd" 2>&1); rc=$?
check "vm start refuses a model the host lacks, naming the feature" \
  "[ $rc = 1 ] && grep -q \"host '$A' (TCG) lacks avx512f\" <<<\"\$out\" && [ \"\$(qemus)\" = 0 ]"
printf '{"hosts": [{"name": "%s", "profile": "Icelake-Server-v4"}]}\n' $C >"$TGVM_STATE_DIR/inv-c.json"
"$T" host up --inventory "$TGVM_STATE_DIR/inv-c.json" >/dev/null
# The host keeps the profile it came up with, whatever the file says later.
sed -i 's/Icelake-Server-v4/Westmere-v2/' "$TGVM_STATE_DIR/inv-c.json"
"$T" vm start $VM --host $C --mem 128M --model kvm64,+avx512f --kernel "$kernel" --initrd "$initrd" >/dev/null
check "a host's profile is the one recorded at host up (the file edited since)" "src_ok $C"
out=$("$T" migrate $VM --to $B 2>&1); rc=$?
check "missing feature refused with exit 1" "[ $rc = 1 ]"
check "refusal names the feature" "grep -q avx512f <<<\"\$out\""
check "refusal changes nothing" "src_ok $C"
"$T" vm stop $VM
# The bundled guest with its minimal model from a scan, a UDP responder and a
# memory-pattern writer (16 MiB rewritten at 20 MiB/s) for the integrity check.
"$T" vm start $VM --host $A --mem 128M --model auto \
  --workload udp-responder,memwriter:--mib=16:--rate=20 >/dev/null 2>"$TGVM_STATE_DIR/start.err"
cpu=$("$T" vm list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["cpu"])')
# The base may have them (not removed) or get them added; either way presented.
check "model auto: the scan's minimal model (popcnt, bmi2 for cpuwork)" \
  "grep -q 'requires popcnt,bmi2' $TGVM_STATE_DIR/start.err && ! grep -qE -- '-(bmi2|popcnt)(,|$)' <<<\"\$cpu\" && grep -q enforce <<<\"\$cpu\""

ip=$("$T" vm list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ip"])')
fabric_to() { # the fabric's forwarding entry for the VM's MAC is host $1's uplink
  local mac port
  mac=$("$T" vm list --json | python3 -c "import json,sys; print([v['mac'] for v in json.load(sys.stdin) if v['name']=='$VM'][0])")
  port=$(python3 -c "
h = 2166136261
for c in b'$1':
    h = ((h ^ c) * 16777619) & 0xffffffff
print('fh%08x' % h)")
  for _ in 1 2 3 4 5 6; do # the entry is replaced at once; give a loaded machine a moment
    bridge -n ${P}fabric fdb show | grep -qi "^$mac dev $port master" && return 0
    sleep 0.5
  done
  echo "# fabric entries for $mac (want $port, host $1):" >&2
  bridge -n ${P}fabric fdb show | grep -i "$mac" | sed 's/^/#   /' >&2
  return 1
}
answers() { # up to $1 tries, one second each
  for _ in $(seq 1 "$1"); do
    ip netns exec ${P}probe busybox ping -c 1 -W 1 "$ip" >/dev/null 2>&1 && return 0
  done
  return 1
}
check "guest boots and answers on its address" "answers 90"

# Destination killed during precopy (bandwidth held low so precopy lasts).
"$T" migrate $VM --to $B --max-bandwidth 4M >/dev/null 2>&1 &
mig=$!
for _ in $(seq 1 100); do
  d=$(ls -d "$TGVM_STATE_DIR/vms/$VM"/in-* 2>/dev/null | head -1)
  [ -n "$d" ] && [ -f "$d/pid" ] && grep -q '"qemu_status": "active"' "$TGVM_STATE_DIR/vms/$VM/migration-active.json" 2>/dev/null && break
  sleep 0.1
done
kill -9 "$(cat "$d/pid")" 2>/dev/null
wait $mig; rc=$?
check "killed destination fails the migration" "[ $rc = 3 ]"
check "killed destination: VM runs on the source" "src_ok $A"
check "killed destination: error says so" "grep -q 'died during precopy' $TGVM_STATE_DIR/vms/$VM/migration.json"

# Cancel mid-precopy.
"$T" migrate $VM --to $B --max-bandwidth 4M >/dev/null 2>&1 &
mig=$!
for _ in $(seq 1 100); do
  grep -q '"qemu_status": "active"' "$TGVM_STATE_DIR/vms/$VM/migration-active.json" 2>/dev/null && break
  sleep 0.1
done
out=$("$T" migrate $VM --to $B 2>&1); rc=$?
check "a second migration of a migrating VM is refused by tgvm" "[ $rc = 1 ] && grep -q 'already migrating' <<<\"\$out\""
st=$("$T" migrate status $VM --json)
check "status of a running migration: time so far, not negative" \
  "jq_ \"sys.exit(0 if j['pipeline_ms'] > 0 and j['ended_unix_ns'] == 0 else 1)\" <<<\"\$st\""
"$T" migrate cancel $VM >/dev/null
wait $mig
check "cancel: VM runs on the source" "src_ok $A"
check "cancel: recorded" "grep -q '\"status\": \"cancelled\"' $TGVM_STATE_DIR/vms/$VM/migration.json"

in_dir() { ls -d "$TGVM_STATE_DIR/vms/$VM"/in-* 2>/dev/null | head -1; }
# Destination killed while it is being prepared (as soon as it has a pid).
"$T" migrate $VM --to $B --max-bandwidth 4M --no-probe >/dev/null 2>&1 &
mig=$!
for _ in $(seq 1 500); do d=$(in_dir); [ -n "$d" ] && [ -s "$d/pid" ] && break; sleep 0.01; done
kill -9 "$(cat "$d/pid")" 2>/dev/null
wait $mig; rc=$?
check "destination killed in prepare: migration fails" "[ $rc = 3 ]"
check "destination killed in prepare: VM runs on the source" "src_ok $A"

# Cancel before QEMU reports the stream active.
"$T" migrate $VM --to $B --max-bandwidth 4M --no-probe >/dev/null 2>&1 &
mig=$!
for _ in $(seq 1 500); do [ -f "$TGVM_STATE_DIR/vms/$VM/migration-active.json" ] && break; sleep 0.01; done
"$T" migrate cancel $VM >/dev/null
wait $mig
check "cancel in prepare: VM runs on the source" "src_ok $A"

# The destination host's fabric link goes down mid-stream: QEMU would wait on
# TCP for minutes; tgvm sees the stream stall and rolls back.
"$T" migrate $VM --to $B --max-bandwidth 4M --no-probe --stall-timeout 3000 >/dev/null 2>&1 &
mig=$!
for _ in $(seq 1 100); do
  grep -q '"qemu_status": "active"' "$TGVM_STATE_DIR/vms/$VM/migration-active.json" 2>/dev/null && break
  sleep 0.1
done
ip -n $P$B link set uplink down
wait $mig; rc=$?
ip -n $P$B link set uplink up
check "link down mid-stream: migration fails" "[ $rc = 3 ]"
check "link down mid-stream: VM runs on the source" "src_ok $A"
check "link down mid-stream: error says the stream stalled" "grep -q 'moved nothing' $TGVM_STATE_DIR/vms/$VM/migration.json"

# After the switch the guest must come back on the destination; here its tap
# is cut from the destination's bridge during precopy, so it cannot answer.
# It has run guest code there: its source is never resumed (that would take
# the guest back in time). The move completes and tgvm says the guest is
# silent (exit 3).
"$T" migrate $VM --to $B --max-bandwidth 16M >/dev/null 2>&1 &
mig=$!
# Cut it as soon as tgvm has put it on the bridge (prepare, before the QEMU
# starts): no race with a precopy that a loaded machine may finish quickly.
tap=
for _ in $(seq 1 300); do
  tap=$(ip -n $P$B -o link show master br0 2>/dev/null | grep -o ' tv[^:@]*' | head -1)
  [ -n "$tap" ] && break
  sleep 0.05
done
ip -n $P$B link set $tap nomaster
# tgvm made the stream's connection with 512 KiB socket buffers (the kernel
# doubles the figure: rb1048576 in ss's socket memory)
bufs=
for _ in $(seq 1 100); do
  bufs=$(ip netns exec $P$B ss -tmnH state established 2>/dev/null | tr -d '\n')
  grep -q 'rb1048576' <<<"$bufs" && break
  sleep 0.05
done
check "stream: tgvm's connection has 512 KiB buffers on the destination" "grep -q 'rb1048576' <<<\"\$bufs\""
wait $mig; rc=$?
check "silent destination: reported as a failure" "[ $rc = 3 ]"
check "silent destination: the VM stays where it ran last, its source is gone" "src_ok $B"
check "silent destination: error says the guest did not answer" "grep -q 'not within' $TGVM_STATE_DIR/vms/$VM/migration.json"
check "silent destination: the fabric points at the destination" "fabric_to $B"
ip -n $P$B link set "${tap# }" master br0
check "silent destination: the guest answers once its link is back" "answers 30"
"$T" migrate $VM --to $A >/dev/null 2>&1; rc=$?
check "and moves back" "[ $rc = 0 ] && src_ok $A"

mw() { # requests to the guest's memwriter, back to back, from the probe namespace
  ip netns exec ${P}probe python3 -c "
import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(5)
for req in sys.argv[2:]:
    for _ in range(5):
        s.sendto(req.encode(),(sys.argv[1],7778))
        try: print(s.recv(4096).decode().strip()); break
        except OSError: pass" "$ip" "$@"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
before=$(mw status)
check "memwriter answers before the move" "grep -q 'MEMWRITER status' <<<\"\$before\""

# Success.
out=$("$T" migrate $VM --to $B --json --svg "$TGVM_STATE_DIR/timeline.svg"); rc=$?
check "migrate succeeds" "[ $rc = 0 ]"
check "VM runs on the destination" "src_ok $B"
check "timeline has STOP->RESUME blackout" "python3 -c \"import json,sys; j=json.loads(sys.stdin.read()); sys.exit(0 if j['status']=='completed' and j['downtime']['vcpu_blackout_ms'] is not None and j['downtime']['qemu_ms'] is not None else 1)\" <<<\"\$out\""
check "migrate status reads the timeline" "$T migrate status $VM | grep -q completed"
check "every millisecond belongs to a named phase: the phases add up to the pipeline (1%)" \
  "python3 -c \"import json,sys; j=json.loads(sys.stdin.read()); s=sum(p['duration_ms'] for p in j['phases']); sys.exit(0 if abs(s - j['pipeline_ms']) <= 0.01 * j['pipeline_ms'] else 1)\" <<<\"\$out\""
check "guest answers on its address from the destination" "answers 30"
check "network blackout measured by the probe, with its floor" "python3 -c \"import json,sys; j=json.loads(sys.stdin.read()); d=j['downtime']; sys.exit(0 if d['network_blackout_ms'] is not None and d['probe_floor_ms'] is not None and j['network_probe']['interval_us'] else 1)\" <<<\"\$out\""
check "network switch: the fabric forwards the VM's MAC to the destination" "fabric_to $B"
check "probe: switch time, first answer after RESUME, datagrams sent while paused" \
  "python3 -c \"import json,sys; j=json.loads(sys.stdin.read()); n=j['network_probe']; d=j['downtime']; sys.exit(0 if n['fabric_switched_at_stop'] and n['switched_after_stop_ms'] >= 0 and 0 <= n['first_answer_after_resume_ms'] <= n['blackout_end_after_resume_ms'] + 0.01 and d['network_blackout_ms'] > 0 and 0 <= n['answered_of_paused'] <= n['sent_while_paused'] else 1)\" <<<\"\$out\""
check "stream: tgvm's connection, its buffers, what was still queued at STOP" \
  "python3 -c \"import json,sys; s=json.loads(sys.stdin.read())['stream']; sys.exit(0 if s['connection']=='tgvm' and s['buffer_bytes']==524288 and s['port'] > 0 and isinstance(s['queued_at_stop_bytes'], int) and s['queued_at_stop_bytes'] >= 0 else 1)\" <<<\"\$out\""
bad=$("$T" migrate $VM --to $A --stream-buffer 12 2>&1); rc=$?
check "--stream-buffer refuses a size it cannot use, naming it" "[ $rc = 2 ] && grep -q \"not '12'\" <<<\"\$bad\" && src_ok $B"
check "timeline drawn as SVG" "grep -q '<svg' $TGVM_STATE_DIR/timeline.svg && grep -q 'vCPU blackout' $TGVM_STATE_DIR/timeline.svg"
after=$(mw verify)
check "memory intact after the move (memwriter verify)" "grep -q 'MEMWRITER ok' <<<\"\$after\""
check "guest never restarted (same boot_id, counter grew)" \
  "[ -n \"\$(field boot_id <<<\"\$before\")\" ] && [ \"\$(field boot_id <<<\"\$before\")\" = \"\$(field boot_id <<<\"\$after\")\" ] && [ \"\$(field counter <<<\"\$after\")\" -gt \"\$(field counter <<<\"\$before\")\" ]"
st=$(mw status); pages=$(field pages <<<"$st"); cur=$(field cursor <<<"$st")
# the page the writer rewrote last is the one it comes back to last
bad=$(mw "corrupt $(( (cur + pages - 2) % pages ))" verify)
check "verify does see a corrupted page (the check can fail)" "grep -q 'MEMWRITER bad' <<<\"\$bad\""

# Back by postcopy: the destination runs first and pulls pages; never silent.
out=$("$T" migrate $VM --to $A --mode postcopy --max-bandwidth 8M --no-probe --json); rc=$?
check "postcopy migrate succeeds" "[ $rc = 0 ] && src_ok $A"
check "postcopy is recorded with its reason" "grep -q '\"postcopy_used\": true' <<<\"\$out\" && grep -q 'postcopy requested' <<<\"\$out\""
after2=$(mw verify)
check "memory intact after postcopy" "grep -q 'MEMWRITER ok' <<<\"\$after2\" && [ \"\$(field boot_id <<<\"\$after2\")\" = \"\$(field boot_id <<<\"\$before\")\" ]"
# auto: precopy cannot converge (the guest dirties 20 MiB/s, the link is held
# at 8 MiB/s), so after --converge-timeout it switches to postcopy, saying why.
out=$("$T" migrate $VM --to $B --mode auto --converge-timeout 2000 --max-bandwidth 8M --no-probe --json); rc=$?
check "auto switches to postcopy when precopy does not converge" "[ $rc = 0 ] && src_ok $B && grep -q 'did not converge within 2000 ms' <<<\"\$out\""
after3=$(mw verify)
check "memory intact after auto" "grep -q 'MEMWRITER ok' <<<\"\$after3\""
# Postcopy, and the link breaks after the switch: neither side holds the whole
# VM, so tgvm pauses both and resumes the stream once the link is back
# (QEMU's postcopy recovery); the guest keeps its memory and its boot.
"$T" migrate $VM --to $A --mode postcopy --max-bandwidth 4M --no-probe --stall-timeout 2000 \
  --json >"$TGVM_STATE_DIR/pc-break.json" 2>"$TGVM_STATE_DIR/pc-break.err" &
mig=$!
for _ in $(seq 1 600); do
  grep -q '"qemu_status": "postcopy-active"' "$TGVM_STATE_DIR/vms/$VM/migration-active.json" 2>/dev/null && break
  sleep 0.05
done
sleep 0.5
ip -n $P$A link set uplink down
sleep 4
ip -n $P$A link set uplink up
wait $mig; rc=$?
cat "$TGVM_STATE_DIR/pc-break.err" >&2; python3 -c "import json; j=json.load(open('$TGVM_STATE_DIR/pc-break.json')); print('postcopy break: rc $rc', j['status'], j.get('error'), 'postcopy_used', j['postcopy_used'], 'recoveries', j['postcopy_recovery_attempts'])" >&2
check "postcopy, link down after the switch: recovered and completed" "[ $rc = 0 ] && src_ok $A && python3 -c \"import json,sys; j=json.load(open('$TGVM_STATE_DIR/pc-break.json')); sys.exit(0 if j['status']=='completed' and j['postcopy_used'] and j['postcopy_recovery_attempts'] >= 1 else 1)\""
after4=$(mw verify)
check "postcopy recovery: memory intact, same boot" "grep -q 'MEMWRITER ok' <<<\"\$after4\" && [ \"\$(field boot_id <<<\"\$after4\")\" = \"\$(field boot_id <<<\"\$before\")\" ]"
# The microvm kind: no PCI bus, the guest's init loads virtio_mmio for its NIC.
"$T" vm stop $VM
"$T" vm start $VM --host $A --mem 128M --machine microvm \
  --workload udp-responder,memwriter:--mib=16:--rate=20 >/dev/null 2>&1
ip=$("$T" vm list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ip"])')
check "microvm guest boots and answers on its virtio-mmio NIC" "src_ok $A && answers 90 && grep -q '\"machine\": \"microvm\"' $TGVM_STATE_DIR/vms/$VM/config.json"
for _ in $(seq 1 30); do before=$(mw status); grep -q 'MEMWRITER status' <<<"$before" && break; sleep 1; done
out=$("$T" migrate $VM --to $B --json); rc=$?
check "microvm precopy succeeds, blackouts measured" "[ $rc = 0 ] && src_ok $B && answers 30 && jq_ \"d=j['downtime']; sys.exit(0 if d['vcpu_blackout_ms'] is not None and d['network_blackout_ms'] is not None else 1)\" <<<\"\$out\""
"$T" migrate $VM --to $A >/dev/null; rc=$?
after=$(mw verify)
check "microvm: back again, memory intact, same boot" "[ $rc = 0 ] && src_ok $A && grep -q 'MEMWRITER ok' <<<\"\$after\" && [ \"\$(field boot_id <<<\"\$(mw status)\")\" = \"\$(field boot_id <<<\"\$before\")\" ]"
"$T" vm stop $VM
"$T" host down $A $B >/dev/null
check "nothing left" "[ \"\$(qemus)\" = 0 ] && ! ip netns list | grep -q '^$P$A\\|^$P$B'"
exit $fail
