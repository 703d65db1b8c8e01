#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tgvm probe --vm --disk: a user's disk image. A small ext4 image holds a
# corpus program (levels-v2: sse4.1 and popcnt, unconditionally) with its
# libraries and a static shell; the probe boots the bundled guest with the
# image attached, runs the program chrooted in it, finds what it needs from
# the decoded SIGILLs the guest kernel reports, and the image file is not
# changed although the command writes to it. Then the same program in an
# MBR partition of an image without a shell, and the errors a user meets.
. "$(dirname "$0")/lib.sh"
tgvm_locate
corpus=${TGVM_SCAN_CORPUS:-$TGVM_SRC/build-check/tests/data/scan/corpus}
prog=$corpus/bin/levels-v2
[ -x "$prog" ] || fail "no scan corpus in '$corpus' (build the project first)"
command -v mkfs.ext4 >/dev/null || fail "mkfs.ext4 is not installed (e2fsprogs; run scripts/setup.sh)"
[ -x /bin/busybox ] || fail "/bin/busybox is missing (busybox-static; run scripts/setup.sh)"
guest_ensure
jobs=$(nproc)

json_get() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# The features LIST brings beyond the Linux baseline, sorted, comma-separated.
closure() {
	"$TGVM" model --need fpu --json >"$TEST_TMP/m0.json"
	"$TGVM" model --need "$1" --json >"$TEST_TMP/m1.json"
	python3 - "$TEST_TMP/m0.json" "$TEST_TMP/m1.json" <<'PY'
import json, sys
a = set(json.load(open(sys.argv[1]))["features"])
b = set(json.load(open(sys.argv[2]))["features"])
print(",".join(sorted(b - a)))
PY
}

# A root tree: the program, its loader and libraries as the host has them.
mkroot() {
	local root=$1 lib
	mkdir -p "$root/bin" "$root/tmp"
	cp "$prog" "$root/bin/"
	for lib in $(ldd "$prog" | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

mkroot "$TEST_TMP/root"
cp /bin/busybox "$TEST_TMP/root/bin/sh"
mkfs.ext4 -q -F -d "$TEST_TMP/root" "$TEST_TMP/disk.img" 8M || fail "mkfs.ext4 failed"
sum=$(sha256sum <"$TEST_TMP/disk.img")

# ---- the whole-disk image: sse4.1 and popcnt found, SIGILLs decoded ----
cands=popcnt,sse4.1,sse4.2,bmi1,bmi2,avx,avx2,movbe
rc=0
"$TGVM" probe --vm --disk "$TEST_TMP/disk.img" --json -j "$jobs" --timeout 240 --candidates "$cands" \
	--run 'echo written >/tmp/w; levels-v2' >"$TEST_TMP/d.json" 2>"$TEST_TMP/d.err" || rc=$?
[ $rc = 0 ] || { cat "$TEST_TMP/d.err" >&2; fail "probe --vm --disk exited $rc"; }
got=$(json_get "$TEST_TMP/d.json" '",".join(sorted(d["required"]))')
assert_eq "$got" "$(closure sse4.1,popcnt)" "disk image: levels-v2 needs"
assert_eq "$(json_get "$TEST_TMP/d.json" 'd["verified"]')" True "disk image: verified"
assert_eq "$(sha256sum <"$TEST_TMP/disk.img")" "$sum" "the image file after the probe (snapshot=on)"
# Every failing search run died of SIGILL and the guest kernel's report of
# it was decoded to a feature taken away in that run.
json_get "$TEST_TMP/d.json" '"\n".join("%s %s %s" % (r["outcome"], r["hint"], r.get("fault", "-"))
	for r in d["run_log"] if r["phase"] == "search" and r["outcome"] != "pass")' >"$TEST_TMP/fails"
[ -s "$TEST_TMP/fails" ] || fail "disk image: no failing search run"
assert_no_grep "$TEST_TMP/fails" '^[a-z-]+ False' "disk image: a failing run without a decoded hint"
assert_grep "$TEST_TMP/fails" 'needs sse4\.1$' "disk image: a SIGILL decoded to sse4.1"
assert_grep "$TEST_TMP/fails" 'popcnt .* needs popcnt$' "disk image: a SIGILL decoded to popcnt"
assert_eq "$(json_get "$TEST_TMP/d.json" 'd["hinted"] == sum(r["hint"] for r in d["run_log"])')" True \
	"disk image: hinted counts the hinted runs"
# The issue's bound for k needed among n candidates: k*log2(n/k) + 2k search runs.
read -r runs search n k bound < <(json_get "$TEST_TMP/d.json" \
	'"%d %d %d %d %.2f" % (d["runs"], d["search_runs"], len(d["candidates"]), len(d["required"]),
	 __import__("math").log2(len(d["candidates"]) / len(d["required"])) * len(d["required"]) + 2 * len(d["required"]))')
python3 -c "import sys; sys.exit(0 if $search <= $bound else 1)" ||
	fail "disk image: $search search runs for k=$k among n=$n, over the bound $bound"
echo "ok disk image: {$got} in $runs runs ($search search, bound $bound for k=$k n=$n)," \
	"$(json_get "$TEST_TMP/d.json" 'd["hinted"]') hinted, $(json_get "$TEST_TMP/d.json" 'round(d["wall_ms"])') ms"

# ---- an MBR partition, no shell in the image: the command runs directly ----
mkroot "$TEST_TMP/root2"
mkfs.ext4 -q -F -d "$TEST_TMP/root2" "$TEST_TMP/fs2.img" 8M || fail "mkfs.ext4 failed"
python3 - "$TEST_TMP/fs2.img" "$TEST_TMP/part.img" <<'PY'
import struct, sys
fs = open(sys.argv[1], "rb").read()
start = 2048  # sectors: the partition begins at 1 MiB
mbr = bytearray(512)
mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", start, len(fs) // 512)
mbr[510:512] = b"\x55\xaa"
with open(sys.argv[2], "wb") as f:
    f.write(mbr + bytes(start * 512 - 512) + fs)
PY
sum2=$(sha256sum <"$TEST_TMP/part.img")
rc=0
"$TGVM" probe --vm --disk "$TEST_TMP/part.img" --json -j "$jobs" --timeout 240 --candidates popcnt \
	--run /bin/levels-v2 >"$TEST_TMP/p.json" 2>"$TEST_TMP/p.err" || rc=$?
[ $rc = 0 ] || { cat "$TEST_TMP/p.err" >&2; fail "probe --vm --disk (partition) exited $rc"; }
assert_eq "$(json_get "$TEST_TMP/p.json" '",".join(d["required"])')" popcnt "partitioned image: needs"
assert_eq "$(sha256sum <"$TEST_TMP/part.img")" "$sum2" "the partitioned image after the probe"
echo "ok partitioned image: popcnt in $(json_get "$TEST_TMP/p.json" 'd["runs"]') runs"

# ---- errors, each before any guest boots ----
expect_error() { # WHAT ERE ARGS...: tgvm probe ARGS fails with exit 2 (bad input) and a message
	local what=$1 ere=$2 rc=0
	shift 2
	"$TGVM" probe --vm "$@" >"$TEST_TMP/e.out" 2>"$TEST_TMP/e.err" || rc=$?
	assert_eq "$rc" 2 "$what: exit status"
	assert_grep "$TEST_TMP/e.err" "$ere" "$what: message"
}
expect_error "missing image" "cannot open '.*no-such\.img'" --disk "$TEST_TMP/no-such.img" --run levels-v2
head -c 4M /dev/zero >"$TEST_TMP/zero.img"
expect_error "no file system" "'.*zero\.img' holds no ext2/3/4 file system" \
	--disk "$TEST_TMP/zero.img" --run levels-v2
expect_error "command not in the image" "'no-such-cmd' is not in disk image" \
	--disk "$TEST_TMP/disk.img" --run no-such-cmd
expect_error "path not in the image" "'/opt/x/prog' is not in disk image" \
	--disk "$TEST_TMP/disk.img" --run /opt/x/prog
if command -v qemu-img >/dev/null; then
	qemu-img convert -O qcow2 "$TEST_TMP/disk.img" "$TEST_TMP/disk.qcow2"
	expect_error "qcow2" "qcow2 image; convert it" --disk "$TEST_TMP/disk.qcow2" --run levels-v2
fi
rc=0
"$TGVM" probe --disk "$TEST_TMP/disk.img" -- /bin/true 2>"$TEST_TMP/e.err" || rc=$?
assert_eq "$rc" 2 "--disk without --vm"
