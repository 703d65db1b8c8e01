#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The bundled guest boots under QEMU (TCG), runs the tgvm.run command, reports
# its exit status, shows the presented CPU in /proc/cpuinfo, and cpuwork is an
# exact oracle for POPCNT and BMI2: it dies of SIGILL when either is masked.
. "$(dirname "$0")/lib.sh"

guest_ensure
checksum=0x7c4daeca2d7289d1 # cpuwork's fixed answer, see guest/README.md

# 1. A full run: marker, output, exit status, workload started from the
#    command line and memwriter's SIGUSR1 report on the console.
boot_guest --cpu max --append "tgvm.workload=memwriter:--mib=8:--rate=2" \
	--run 'uname -r; cpuwork; sleep 1; kill -USR1 $(cat /run/tgvm/memwriter.pid); sleep 2; exit 3' ||
	fail "guest with --cpu max did not finish"
assert_grep "$GUEST_LOG" '^TGVM-READY ms=[0-9]+ kernel=[^ ]+ boot_id=[0-9a-f-]+' "ready marker"
assert_eq "$GUEST_RC" 3 "exit status of the tgvm.run command"
guest_output | grep -qx "$GUEST_KVER" || fail "guest did not print its kernel version '$GUEST_KVER'"
guest_output | grep -qx "CPUWORK ok popcnt bmi2 checksum=$checksum" ||
	fail "cpuwork under -cpu max: $(guest_output | grep CPUWORK || echo 'no CPUWORK line')"
assert_grep "$GUEST_LOG" '^TGVM-WORKLOAD memwriter pid=[0-9]+' "memwriter started"
assert_grep "$GUEST_LOG" '^MEMWRITER ok pages=2048 gen=[0-9]+ cursor=[0-9]+ counter=[0-9]+ ' \
	"memwriter verify on SIGUSR1"
echo "boot: TGVM-READY after $GUEST_READY_MS ms (TCG, -cpu max)"

# 2. Exactly POPCNT and BMI2 are enough: the baseline model plus the two.
boot_guest --cpu qemu64,+popcnt,+bmi2 --run 'cat /proc/cpuinfo; cpuwork' ||
	fail "guest with qemu64,+popcnt,+bmi2 did not finish"
assert_eq "$GUEST_RC" 0 "cpuwork with popcnt and bmi2"
guest_output | grep -qx "CPUWORK ok popcnt bmi2 checksum=$checksum" || fail "cpuwork checksum"
guest_has_flag popcnt || fail "guest /proc/cpuinfo lacks popcnt under qemu64,+popcnt,+bmi2"
guest_has_flag bmi2 || fail "guest /proc/cpuinfo lacks bmi2 under qemu64,+popcnt,+bmi2"
guest_has_flag avx2 && fail "guest /proc/cpuinfo shows avx2 under qemu64,+popcnt,+bmi2"

# 3. and 4. Each of them is needed: SIGILL (128 + 4) without it.
for missing in bmi2 popcnt; do
	other=$([ $missing = bmi2 ] && echo popcnt || echo bmi2)
	boot_guest --cpu "qemu64,+$other" --run 'grep -m1 ^flags /proc/cpuinfo; cpuwork' ||
		fail "guest with qemu64,+$other did not finish"
	assert_eq "$GUEST_RC" 132 "cpuwork without $missing (SIGILL)"
	guest_has_flag "$missing" && fail "guest /proc/cpuinfo shows $missing under qemu64,+$other"
	guest_has_flag "$other" || fail "guest /proc/cpuinfo lacks $other under qemu64,+$other"
done

# 5. A command with quotes and a failing one, through tgvm.run (not run64).
boot_guest --cpu qemu64 --append "tgvm.run=\"echo 'a  b'; false\"" ||
	fail "guest with tgvm.run did not finish"
assert_eq "$GUEST_RC" 1 "exit status of 'false'"
guest_output | grep -qx 'a  b' || fail "tgvm.run with single quotes inside: $(guest_output)"
echo "ok"
