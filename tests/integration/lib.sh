# SPDX-License-Identifier: MIT
# Shared helpers of tests/integration/test-*.sh (source it; bash only):
# where the built tgvm and the bundled guest are, booting the guest under
# QEMU (TCG) with a -cpu string and a command, reading its serial log, and
# network namespaces with a tap for guests that must be reached from outside.
# Exit 77 means "skipped" to meson.

set -euo pipefail

TGVM_SRC=${TGVM_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TGVM_QEMU=${TGVM_QEMU:-qemu-system-x86_64}

# The built tgvm: $TGVM (set by meson), else the usual build directories.
tgvm_locate() {
	local b
	if [ -n "${TGVM:-}" ] && [ -x "$TGVM" ]; then
		return 0
	fi
	for b in "${TGVM_BUILD:-}" "$TGVM_SRC/build-check" "$TGVM_SRC/build"; do
		if [ -n "$b" ] && [ -x "$b/tgvm" ]; then
			TGVM=$b/tgvm
			export TGVM
			return 0
		fi
	done
	fail "no built tgvm found (set TGVM or run 'make build')"
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

# One scratch directory per test script, removed at exit with whatever was
# registered through on_exit (QEMU processes, namespaces).
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tgvm-test.XXXXXX")
_cleanups=()
on_exit() {
	_cleanups+=("$1")
}
_run_cleanups() {
	local i
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_cleanups[$i]}" >/dev/null 2>&1 || true
	done
	if [ "${TGVM_KEEP_TMP:-0}" = 1 ]; then
		echo "kept $TEST_TMP" >&2
	else
		rm -rf "$TEST_TMP"
	fi
}
trap _run_cleanups EXIT

# assert_grep FILE ERE WHAT: FILE must have a line matching ERE.
assert_grep() {
	grep -a -q -E -- "$2" "$1" || fail "$3 (no line matching '$2' in $1)"
}

# assert_no_grep FILE ERE WHAT: no line of FILE may match ERE.
assert_no_grep() {
	if grep -a -q -E -- "$2" "$1"; then
		fail "$3 (found '$(grep -a -m1 -E -- "$2" "$1")' in $1)"
	fi
}

assert_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

# The bundled guest, built (or found cached) by scripts/build-guest.sh.
# Sets GUEST_DIR, GUEST_KERNEL, GUEST_INITRD, GUEST_KVER.
guest_ensure() {
	local cache=${TGVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tgvm}
	"$TGVM_SRC/scripts/build-guest.sh" >&2 || fail "cannot build the bundled guest (scripts/build-guest.sh)"
	GUEST_DIR=$cache/guest
	GUEST_KERNEL=$GUEST_DIR/vmlinuz
	GUEST_INITRD=$GUEST_DIR/initramfs.img
	GUEST_KVER=$(sed -n 's/^ *"kernel_version": "\(.*\)",$/\1/p' "$GUEST_DIR/manifest.json")
	[ -s "$GUEST_KERNEL" ] && [ -s "$GUEST_INITRD" ] && [ -n "$GUEST_KVER" ] ||
		fail "bundled guest incomplete in '$GUEST_DIR'"
	command -v "$TGVM_QEMU" >/dev/null || fail "'$TGVM_QEMU' is not installed (run scripts/setup.sh)"
}

_guest_n=0

# boot_guest [--cpu STR] [--run CMD] [--timeout SEC] [--mem MIB] [--append ARGS]
#            [--log FILE] [--netns NS] [--tap IFNAME] [--bg] [-- QEMU ARGS...]
# Boots the bundled guest under QEMU with TCG. --run passes CMD (any shell
# text) as tgvm.run64, so quoting never matters. In the foreground (default)
# the guest powers off after CMD and QEMU is killed after --timeout (120 s).
# Sets GUEST_LOG (the serial console, also printed on failure), GUEST_RC
# (CMD's exit status, "" when no TGVM-RESULT line came) and GUEST_READY_MS.
# Returns 0 when the guest printed TGVM-RESULT (or, with --bg, TGVM-READY).
# --bg leaves the guest running (QEMU pid in GUEST_PID, stopped at exit or by
# guest_stop). --netns runs QEMU inside that namespace; --tap gives the
# guest a virtio-net NIC on that tap device.
boot_guest() {
	local cpu=max run="" timeout=120 mem=256 append="" log="" netns="" tap="" bg=0
	local qemu_extra=() cmdline qrc=0 i
	while [ $# -gt 0 ]; do
		case "$1" in
		--cpu) cpu=$2 && shift 2 ;;
		--run) run=$2 && shift 2 ;;
		--timeout) timeout=$2 && shift 2 ;;
		--mem) mem=$2 && shift 2 ;;
		--append) append=$2 && shift 2 ;;
		--log) log=$2 && shift 2 ;;
		--netns) netns=$2 && shift 2 ;;
		--tap) tap=$2 && shift 2 ;;
		--bg) bg=1 && shift ;;
		--) shift && qemu_extra=("$@") && break ;;
		*) fail "boot_guest: unknown option '$1'" ;;
		esac
	done
	[ -n "${GUEST_KERNEL:-}" ] || guest_ensure
	_guest_n=$((_guest_n + 1))
	GUEST_LOG=${log:-$TEST_TMP/guest-$_guest_n.log}
	GUEST_RC=""
	GUEST_READY_MS=""
	GUEST_PID=""
	: >"$GUEST_LOG"

	cmdline="console=ttyS0 panic=-1 quiet cryptomgr.notests no_timer_check"
	[ $bg = 1 ] || cmdline+=" tgvm.poweroff=1"
	[ -z "$run" ] || cmdline+=" tgvm.run64=$(printf '%s' "$run" | base64 -w0)"
	[ -z "$append" ] || cmdline+=" $append"

	local qemu=("$TGVM_QEMU" -accel tcg -cpu "$cpu" -m "$mem" -smp 1
		-display none -monitor none -serial "file:$GUEST_LOG" -no-reboot
		-kernel "$GUEST_KERNEL" -initrd "$GUEST_INITRD" -append "$cmdline")
	if [ -n "$tap" ]; then
		qemu+=(-netdev "tap,id=n0,ifname=$tap,script=no,downscript=no"
			-device virtio-net-pci,netdev=n0)
	elif [ ${#qemu_extra[@]} -eq 0 ]; then
		qemu+=(-nic none)
	fi
	qemu+=("${qemu_extra[@]}")
	local pre=()
	[ -z "$netns" ] || pre=(ip netns exec "$netns")

	if [ $bg = 1 ]; then
		"${pre[@]}" "${qemu[@]}" </dev/null >"$GUEST_LOG.qemu" 2>&1 &
		GUEST_PID=$!
		on_exit "kill $GUEST_PID; sleep 0.2; kill -9 $GUEST_PID"
		for ((i = 0; i < timeout * 10; i++)); do
			if grep -a -q '^TGVM-READY' "$GUEST_LOG"; then
				break
			fi
			kill -0 "$GUEST_PID" 2>/dev/null || break
			sleep 0.1
		done
	else
		timeout --kill-after=5 "$timeout" "${pre[@]}" "${qemu[@]}" </dev/null \
			>"$GUEST_LOG.qemu" 2>&1 || qrc=$?
	fi
	GUEST_READY_MS=$(sed -n 's/^TGVM-READY ms=\([0-9]*\).*/\1/p' "$GUEST_LOG" | tr -d '\r' | head -n1)
	if [ $bg = 1 ]; then
		if [ -z "$GUEST_READY_MS" ]; then
			_guest_dump "guest did not print TGVM-READY within ${timeout}s"
			return 1
		fi
		return 0
	fi
	GUEST_RC=$(sed -n 's/^TGVM-RESULT rc=\([0-9]*\).*/\1/p' "$GUEST_LOG" | tr -d '\r' | tail -n1)
	if [ -z "$GUEST_RC" ]; then
		if [ $qrc = 124 ] || [ $qrc = 137 ]; then
			_guest_dump "guest timed out after ${timeout}s without TGVM-RESULT"
		else
			_guest_dump "guest ended (qemu status $qrc) without TGVM-RESULT"
		fi
		return 1
	fi
	return 0
}

_guest_dump() {
	echo "boot_guest: $1; serial log $GUEST_LOG:" >&2
	tail -n 30 "$GUEST_LOG" >&2 || true
	if [ -s "$GUEST_LOG.qemu" ]; then
		echo "qemu said:" >&2
		tail -n 10 "$GUEST_LOG.qemu" >&2 || true
	fi
}

# Stop a guest started with boot_guest --bg.
guest_stop() {
	[ -n "${GUEST_PID:-}" ] || return 0
	kill "$GUEST_PID" 2>/dev/null || true
	wait "$GUEST_PID" 2>/dev/null || true
	GUEST_PID=""
}

# The output of the --run command (between TGVM-RUN-BEGIN and TGVM-RESULT),
# carriage returns removed.
guest_output() {
	local f=${1:-$GUEST_LOG}
	tr -d '\r' <"$f" | sed -n '/^TGVM-RUN-BEGIN$/,/^TGVM-RESULT rc=/p' | sed '1d;$d'
}

# Is FLAG in the guest's /proc/cpuinfo "flags" line? Needs a --run command
# that printed /proc/cpuinfo (e.g. "cat /proc/cpuinfo").
guest_has_flag() {
	guest_output "${2:-$GUEST_LOG}" | grep -m1 '^flags' | tr ' ' '\n' | grep -qx -- "$1"
}

# Network namespaces: netns_create NAME makes tgvm-NAME (the project's
# prefix) and registers its removal. Needs root; skips otherwise.
netns_create() {
	local ns=tgvm-$1
	[ "$(id -u)" = 0 ] || skip "network namespaces need root"
	[ -c /dev/net/tun ] || skip "no /dev/net/tun"
	ip netns del "$ns" 2>/dev/null || true
	ip netns add "$ns" || skip "cannot create network namespace '$ns'"
	on_exit "ip netns del $ns"
	ip -n "$ns" link set lo up
	NETNS=$ns
}

# netns_tap NS IFNAME ADDR/PREFIX: a tap device for a guest NIC, with the
# host side's address, up.
netns_tap() {
	ip -n "$1" tuntap add "$2" mode tap || fail "cannot create tap '$2' in '$1'"
	ip -n "$1" addr add "$3" dev "$2"
	ip -n "$1" link set "$2" up
}

# udp_ask [--netns NS] HOST PORT PAYLOAD: send one datagram, print the reply
# (nothing after 10 s without one). One try only: requests need not be
# idempotent (memwriter's "corrupt").
udp_ask() {
	local pre=()
	if [ "$1" = --netns ]; then
		pre=(ip netns exec "$2")
		shift 2
	fi
	"${pre[@]}" python3 - "$1" "$2" "$3" <<'PY'
import socket, sys
host, port, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(payload, (host, port))
try:
    print(s.recv(4096).decode(errors="replace"))
except socket.timeout:
    pass
PY
}
