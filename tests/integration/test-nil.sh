#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nil-migration as a user drives it, with 128 MiB TCG guests: memory devices
# from an inventory (capacity full, a host that cannot map a device); a guest
# on the device whose memwriter keeps rewriting 16 MiB, handed over with
# x-ignore-shared (the source stops before the destination starts, under
# 1 MiB moves, a second and a concurrent handoff are refused, a destination
# frozen and killed mid-handoff leaves the VM on the source with its memory
# intact); then a guest in private RAM decoupled, recoupled and moved with
# --mode nil; then the same on the microvm machine kind (virtio-mmio), whose
# handoff carries under 128 KiB, and a move to a host of another kind is
# refused. After each step the guest's pattern verifies, its boot id holds
# and its counter grows.
set -uo pipefail
T=${TGVM:?}
guest_dir=${TGVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tgvm}/guest
[ -r "$guest_dir/vmlinuz" ] || "$TGVM_SRC/scripts/build-guest.sh" >/dev/null || true
[ "$(id -u)" = 0 ] || { echo "skip: needs root for network namespaces"; exit 77; }
[ -r "$guest_dir/vmlinuz" ] && [ -r "$guest_dir/initramfs.img" ] || { echo "skip: no test guest"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "skip: no qemu"; exit 77; }
[ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" = tmpfs ] || { echo "skip: /dev/shm is not tmpfs"; exit 77; }

export TGVM_STATE_DIR=$(mktemp -d /tmp/tgvm-itest-state-XXXXXX)
export TGVM_CACHE_DIR=${TGVM_CACHE_DIR:-$HOME/.cache/tgvm}
export TGVM_ACCEL=tcg
export TGVM_NETNS_PREFIX=tgvm$$-
P=$TGVM_NETNS_PREFIX
A=nil-a B=nil-b C=nil-c D=nil-d VM=nil-vm$$
inv=$TGVM_STATE_DIR/inventory.json
cat >"$inv" <<EOF
{"hosts": [{"name": "$A", "profile": "EPYC-Rome-v2"},
           {"name": "$B", "profile": "EPYC-Milan-v1"},
           {"name": "$C", "profile": "EPYC-Milan-v1"},
           {"name": "$D", "profile": "EPYC-Milan-v1", "machine": "pc"}],
 "memdevs": [{"name": "cxl0", "capacity": "512M", "hosts": ["$A", "$B", "$D"]},
             {"name": "cxl1", "capacity": "192M", "hosts": ["$C"]}]}
EOF
fail=0
cleanup() {
  "$T" vm stop $VM ${VM}x ${VM}y >/dev/null 2>&1
  "$T" host down >/dev/null 2>&1
  rm -rf "$TGVM_STATE_DIR" /dev/shm/${P}memdev-cxl0 /dev/shm/${P}memdev-cxl1
}
trap cleanup EXIT
check() { if eval "$2"; then echo "ok - $1"; else echo "FAIL - $1"; fail=1; fi; }
qemus() { pgrep -f -- "-name $VM,debug-threads" | wc -l; }
jq_() { python3 -c "import json,sys; j=json.load(sys.stdin); $1"; }
on() { # the VM runs on host $1, one QEMU, no destination left, memdev "$2" ("" private)
  "$T" vm list --json | jq_ "
v=[x for x in j if x['name']=='$VM']
sys.exit(0 if v and v[0]['host']=='$1' and v[0]['state']=='running' and not v[0]['migrating'] else 1)" &&
    [ "$(qemus)" = 1 ] && ! ls -d "$TGVM_STATE_DIR/vms/$VM"/in-* >/dev/null 2>&1 &&
    [ "$(python3 -c "import json; print(json.load(open('$TGVM_STATE_DIR/vms/$VM/config.json')).get('memdev',''))")" = "$2" ]
}
ram() { python3 -c "import json; print(json.load(open('$TGVM_STATE_DIR/vms/$VM/config.json')).get('mem_file',''))"; }
ask() { # memwriter request $1 -> its answer line
  ip netns exec ${P}probe python3 - "$ip" "$1" <<'PY'
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
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
last_counter=0
intact() { # memwriter verifies its pattern, same boot, counter grew since the last call
  local v s c
  v=$(ask verify)
  s=$(ask status)
  c=$(field counter "$s")
  if [[ $v == "MEMWRITER ok "* ]] && [ "$(field boot_id "$s")" = "$boot_id" ] &&
    [ -n "$c" ] && [ "$c" -gt "$last_counter" ]; then
    last_counter=$c
    return 0
  fi
  echo "# memwriter: verify '$v', status '$s' (boot $boot_id, counter before $last_counter)"
  return 1
}

"$T" host up --inventory "$inv" >/dev/null
out=$("$T" fleet --inventory "$inv" 2>&1)
check "fleet shows the devices and their domains" "grep -q '2 migration domains' <<<\"\$out\" && grep -q 'cxl0 .* $A, $B' <<<\"\$out\""

# Capacity: cxl1 holds 192 MiB.
"$T" vm start ${VM}x --host $C --mem 128M --memdev cxl1 >/dev/null
out=$("$T" vm start ${VM}y --host $C --mem 128M --memdev cxl1 2>&1); rc=$?
check "a full device refuses a VM, saying so" "[ $rc != 0 ] && grep -q \"memory device 'cxl1' is full: 128 MiB of 192 MiB used\" <<<\"\$out\""
"$T" vm stop ${VM}x
check "stopping a VM frees its device space" "[ -z \"\$(ls /dev/shm/${P}memdev-cxl1)\" ]"
out=$("$T" vm start ${VM}y --host $A --mem 128M --memdev cxl1 2>&1); rc=$?
check "a host off the device cannot place a VM there" "[ $rc != 0 ] && grep -q \"host '$A' cannot map memory device 'cxl1'\" <<<\"\$out\""

start_vm() { # HOST MEMWRITER-RATE [vm start options]
  "$T" vm start $VM --host $1 --mem 128M "${@:3}" \
    --append "console=ttyS0 panic=-1 quiet cryptomgr.notests no_timer_check tgvm.workload=udp-responder,memwriter:--mib=16:--rate=$2" >/dev/null
  ip=$("$T" vm list --json | jq_ "print([x for x in j if x['name']=='$VM'][0]['ip'])")
  for _ in $(seq 1 120); do s=$(ask status); [[ $s == "MEMWRITER status"* ]] && break; sleep 1; done
  boot_id=$(field boot_id "$s")
  last_counter=0
}

# A guest on cxl0 from the start, its memwriter rewriting 16 MiB at 8 MiB/s.
start_vm $A 8 --memdev cxl0
check "guest on the device: memwriter answers" "[ -n \"$boot_id\" ] && intact"

out=$("$T" migrate $VM --to $C --mode shared 2>&1); rc=$?
check "handoff to a host off the device is refused with the reason" "[ $rc = 1 ] && grep -q \"host '$C' cannot map memory device 'cxl0' (shared by hosts $A, $B, $D)\" <<<\"\$out\" && on $A cxl0"

# Destination frozen mid-handoff (test hook), then killed: the VM stays on A.
TGVM_TEST_FAULT=handoff-freeze-destination "$T" migrate $VM --to $B --mode shared >/dev/null 2>&1 &
mig=$!
d=""
for _ in $(seq 1 200); do
  p=$(cat "$TGVM_STATE_DIR/vms/$VM"/in-*/pid 2>/dev/null)
  [ -n "$p" ] && grep -q '^State:.*stopped' /proc/$p/status 2>/dev/null && d=$p && break
  sleep 0.05
done
sleep 1
[ -n "$d" ] && kill -9 "$d"
wait $mig; rc=$?
check "frozen then killed destination fails the handoff" "[ -n \"$d\" ] && [ $rc = 3 ]"
check "... the VM runs on the source from the same memory" "on $A cxl0"
check "... no page lost" "intact"
check "... the lease still names the source" "grep -q '\"host\": \"$A\"' /dev/shm/${P}memdev-cxl0/$VM.lease"

# Two handoffs at once: exactly one wins.
"$T" migrate $VM --to $B --mode shared --json >"$TGVM_STATE_DIR/h1.json" 2>"$TGVM_STATE_DIR/h1.err" &
h1=$!
"$T" migrate $VM --to $B --mode shared --json >"$TGVM_STATE_DIR/h2.json" 2>"$TGVM_STATE_DIR/h2.err" &
h2=$!
wait $h1; r1=$?
wait $h2; r2=$?
check "concurrent handoffs: one succeeds, one is refused" "[ \$(( (r1 == 0) + (r2 == 0) )) = 1 ] && [ \$(( (r1 == 1) + (r2 == 1) )) = 1 ]"
ok=$([ $r1 = 0 ] && echo h1 || echo h2)
out=$(cat "$TGVM_STATE_DIR/$ok.json")
check "handoff: VM runs on $B from the same file" "on $B cxl0"
check "handoff: memory intact" "intact"
check "handoff: the source stopped before the destination started" \
  "jq_ \"sys.exit(0 if 0 < j['stop_event_us'] < j['resume_event_us'] else 1)\" <<<\"\$out\""
check "handoff: blackout measured, under 1 MiB moved" \
  "jq_ \"sys.exit(0 if j['downtime']['vcpu_blackout_ms'] is not None and 0 < j['stream_bytes'] < 1048576 else 1)\" <<<\"\$out\""
check "handoff: lease moved to $B, generation 2" "grep -q '\"host\": \"$B\"' /dev/shm/${P}memdev-cxl0/$VM.lease && grep -q '\"generation\": 2' /dev/shm/${P}memdev-cxl0/$VM.lease"
out=$("$T" migrate $VM --to $B --mode shared 2>&1); rc=$?
check "a second handoff of the handed-off VM is refused" "[ $rc = 1 ] && grep -q 'a second handoff is refused' <<<\"\$out\" && on $B cxl0"

out=$("$T" migrate $VM --to $A --mode shared --breakdown --json); rc=$?
check "handoff back with a breakdown of the blackout" "[ $rc = 0 ] && on $A cxl0 && jq_ \"b=j['breakdown']; sys.exit(0 if b['device_save_ms'] is not None and b['transfer_and_load_ms'] is not None and b['slowest_loads'] else 1)\" <<<\"\$out\""

# A guest in private RAM: decouple, recouple, then all three at once.
"$T" vm stop $VM
start_vm $A 8
check "guest in private RAM: memwriter answers" "[ -n \"$boot_id\" ] && intact"
out=$("$T" migrate $VM --to $B --mode shared 2>&1); rc=$?
check "handoff of a VM in private RAM is refused" "[ $rc = 1 ] && grep -q 'decouple it first' <<<\"\$out\" && on $A ''"

out=$("$T" migrate $VM --decouple cxl0 --json); rc=$?
check "decouple succeeds" "[ $rc = 0 ] && jq_ \"sys.exit(0 if j['step']=='decouple' and j['status']=='completed' else 1)\" <<<\"\$out\""
check "decouple: VM runs on $A from cxl0" "on $A cxl0 && [ -s \"\$(ram)\" ]"
check "decouple: memory intact" "intact"

file=$(ram)
out=$("$T" migrate $VM --recouple --json); rc=$?
check "recouple succeeds" "[ $rc = 0 ] && on $A ''"
check "recouple: device space freed" "[ ! -e \"$file\" ]"
check "recouple: memory intact" "intact"

# All three in one command, from private RAM on A to private RAM on B.
out=$("$T" migrate $VM --to $B --mode nil --json); rc=$?
check "--mode nil: decouple, handoff, recouple" "[ $rc = 0 ] && jq_ \"sys.exit(0 if [x['step'] for x in j]==['decouple','handoff','recouple'] and all(x['status']=='completed' for x in j) else 1)\" <<<\"\$out\""
check "--mode nil: VM on $B in private RAM" "on $B ''"
check "--mode nil: memory intact" "intact"
check "--mode nil: nothing left on the device" "[ -z \"\$(ls /dev/shm/${P}memdev-cxl0)\" ]"

# The microvm kind: private RAM, --mode nil, then a handoff with its sections.
"$T" vm stop $VM
start_vm $A 8 --machine microvm
check "microvm guest (virtio-mmio NIC): memwriter answers" "[ -n \"$boot_id\" ] && intact && grep -q '\"machine_kind\": \"microvm\"' \"$TGVM_STATE_DIR/vms/$VM/config.json\""
out=$("$T" migrate $VM --to $B --mode nil --json); rc=$?
check "microvm --mode nil: decouple, handoff, recouple" "[ $rc = 0 ] && on $B '' && intact"
"$T" migrate $VM --decouple cxl0 >/dev/null
out=$("$T" migrate $VM --to $A --mode shared --breakdown --json); rc=$?
microvm_handoff_ok() {
  [ $rc = 0 ] || { echo "#   exit $rc: $(head -c 300 <<<"$out")"; return 1; }
  on $A cxl0 || { echo "#   not on $A from cxl0"; return 1; }
  intact || { echo "#   memory not intact"; return 1; }
  jq_ "
s=j['breakdown']['sections']; names=[x['section'] for x in s]
bad=[x['section'] for x in s if x['section']!='ram' and x['load_ms'] is None]
ok=0 < (j['stream_bytes'] or 0) < 131072 and any('virtio-mmio' in n for n in names) and not any('pci' in n.lower() for n in names) and not bad
print('#   stream_bytes', j['stream_bytes'], 'sections', len(names)) if ok else print('#   stream_bytes', j['stream_bytes'], 'sections', names, 'no load time:', bad)
sys.exit(0 if ok else 1)" <<<"$out"
}
check "microvm handoff: under 128 KiB, its sections listed with save and load times, no PCI" microvm_handoff_ok
out=$("$T" migrate $VM --to $D --mode shared 2>&1); rc=$?
check "a move to a host of another machine kind is refused with the reason" "[ $rc = 1 ] && grep -q \"VM '$VM' is a microvm VM and host '$D' runs pc VMs\" <<<\"\$out\" && on $A cxl0 && intact"
"$T" vm stop $VM
"$T" host down $A $B $C $D
check "nothing left" "[ \"\$(qemus)\" = 0 ] && ! ip netns list | grep -q '^$P$A\\|^$P$B\\|^$P$D'"
check "host down removes the emptied device directory" "! ls -d /dev/shm/${P}memdev-* 2>/dev/null"
exit $fail
