#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The guest's workloads, reached from outside the way the migration tools
# reach them: a network namespace with a tap device, the guest's virtio-net
# NIC on it at 198.18.250.2. Checks ping, udp-responder's echo, and
# memwriter's status (the counter grows, the boot id holds), verify, and that
# verify does catch a damaged page.
. "$(dirname "$0")/lib.sh"

guest_ensure
netns_create "gwl-$$"
ns=$NETNS
host_ip=198.18.250.1
guest_ip=198.18.250.2
netns_tap "$ns" tgvm-tap0 "$host_ip/24"

# A busy memwriter (8 MiB/s over 16 MiB) and an idle one on port 7779 whose
# memory only changes when the test damages it.
boot_guest --bg --netns "$ns" --tap tgvm-tap0 --timeout 120 \
	--append "tgvm.ip=$guest_ip/24 tgvm.workload=udp-responder,memwriter:--mib=16:--rate=8,memwriter:--mib=4:--rate=0:--port=7779" ||
	fail "guest did not come up"
echo "workloads: TGVM-READY after $GUEST_READY_MS ms (TCG, virtio-net on a tap)"
assert_grep "$GUEST_LOG" "^TGVM-NET eth0 ip=$guest_ip/24 mac=" "guest configured eth0"
assert_grep "$GUEST_LOG" '^UDP-RESPONDER listening port=7777' "udp-responder listening"
ready_boot_id=$(sed -n 's/^TGVM-READY .*boot_id=\([0-9a-f-]*\).*/\1/p' "$GUEST_LOG" | tr -d '\r')

ip netns exec "$ns" busybox ping -c 3 -W 5 "$guest_ip" >"$TEST_TMP/ping" ||
	fail "guest $guest_ip does not answer ping: $(tail -n 2 "$TEST_TMP/ping")"

# udp-responder: every datagram comes back unchanged.
ip netns exec "$ns" python3 - "$guest_ip" <<'PY' || fail "udp-responder did not echo"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
for seq in range(200):
    msg = seq.to_bytes(8, "little") + b"tgvm-probe" * (seq % 7)
    s.sendto(msg, (sys.argv[1], 7777))
    got = s.recv(2048)
    if got != msg:
        sys.exit(f"seq {seq}: sent {msg!r}, got {got!r}")
print("udp-responder: 200 of 200 echoed")
PY

# memwriter: the counter grows between two status requests, same boot.
counter() { sed -n 's/.* counter=\([0-9]*\) .*/\1/p' <<<"$1"; }
s1=$(udp_ask --netns "$ns" "$guest_ip" 7778 status)
sleep 2
s2=$(udp_ask --netns "$ns" "$guest_ip" 7778 status)
[[ $s1 == "MEMWRITER status pages=4096 "* ]] || fail "memwriter status: '$s1'"
c1=$(counter "$s1")
c2=$(counter "$s2")
[ -n "$c1" ] && [ -n "$c2" ] && [ "$c2" -gt "$c1" ] || fail "memwriter counter did not grow: '$s1' then '$s2'"
[[ $s2 == *" boot_id=$ready_boot_id "* ]] || fail "memwriter boot id differs from TGVM-READY's: '$s2'"

v=$(udp_ask --netns "$ns" "$guest_ip" 7778 verify)
[[ $v == "MEMWRITER ok pages=4096 "* ]] || fail "memwriter verify of the busy region: '$v'"

# verify can fail: damage one page of the idle region.
v=$(udp_ask --netns "$ns" "$guest_ip" 7779 verify)
[[ $v == "MEMWRITER ok pages=1024 "* ]] || fail "memwriter verify of the idle region: '$v'"
r=$(udp_ask --netns "$ns" "$guest_ip" 7779 "corrupt 77")
assert_eq "$r" "MEMWRITER corrupted page=77" "corrupt request"
v=$(udp_ask --netns "$ns" "$guest_ip" 7779 verify)
[[ $v == "MEMWRITER bad page=77 expected_gen=0 found_page=77 found_gen=0 bad_pages=1 "* ]] ||
	fail "memwriter verify missed a damaged page: '$v'"
echo "memwriter: $s2"
guest_stop
echo "ok"
