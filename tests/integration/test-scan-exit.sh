#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tgvm scan as a user relies on it: exit 0 only for a complete answer, 3 when
# files could not be read or analysed (what was found still printed, errors
# listed), 2 for a path that names nothing (missing, a symlink loop) — as
# tgvm-scan(1) says; a non-ELF file over 2 GiB is not an error; an input named
# twice is read once; a missing libc is a warning in the table; --explain
# names a symbol only for an address inside it, and its verdict agrees with
# the evidence it lists.
. "$(dirname "$0")/lib.sh"
tgvm_locate
corpus=${TGVM_SCAN_CORPUS:-$TGVM_SRC/build-check/tests/data/scan/corpus}
[ -x "$corpus/bin/avx2-plain" ] || fail "no scan corpus in '$corpus' (build the project first)"
page=$TGVM_SRC/docs/man/tgvm-scan.1.scd
t=$TEST_TMP

# scan ARGS...: run tgvm scan, $rc its exit status, output in $t/out, $t/err
scan() {
	rc=0
	"$TGVM" scan "$@" >"$t/out" 2>"$t/err" || rc=$?
}

# A clean file: 0.
scan "$corpus/bin/avx2-plain"
assert_eq "$rc" 0 "clean file"

# A tree with a broken ELF file (program headers outside the file) beside a
# good one: the good one's features printed, the error listed, exit 3.
mkdir -p "$t/tree"
cp "$corpus/bin/avx2-plain" "$t/tree/good"
cp "$corpus/bin/cap-arg" "$t/tree/bad"
printf '\xff\xff\xff\xff\xff' | dd of="$t/tree/bad" bs=1 seek=36 conv=notrunc status=none
scan "$t/tree"
assert_eq "$rc" 3 "tree with a broken ELF file"
assert_grep "$t/out" 'avx2' "features of the good file still printed"
assert_grep "$t/out" 'error: .*bad.*program header table' "the error listed"
assert_grep "$t/out" 'report is incomplete' "the table says the report is incomplete"
scan --json "$t/tree"
assert_eq "$rc" 3 "--json of a tree with a broken ELF file"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["errors"] and "avx2" in d["required"]' \
	"$t/out" || fail "--json: errors listed and features printed"
grep -q 'exit.*3\|3 when some could not be' "$page" || fail "tgvm-scan(1) does not document exit 3"

# Paths that name nothing: 2, as the page says.
scan "$t/does-not-exist"
assert_eq "$rc" 2 "missing path"
ln -s "$t/loop-b" "$t/loop-a"
ln -s "$t/loop-a" "$t/loop-b"
scan "$t/loop-a"
assert_eq "$rc" 2 "symlink loop"
grep -q 'symlink loop' "$page" || fail "tgvm-scan(1) does not say a symlink loop exits 2"

# A sparse non-ELF file over 2 GiB is not ELF, not an error; named twice, once.
mkdir -p "$t/big"
truncate -s 3G "$t/big/swap"
cp "$corpus/bin/avx2-plain" "$t/big/prog"
scan --json "$t/big"
assert_eq "$rc" 0 "a 3 GiB non-ELF file"
assert_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["skipped"]["non_elf"], d["skipped"]["errors"])' "$t/out")" \
	"1 0" "3 GiB non-ELF file: not ELF, no error"
scan --json "$t/big" "$t/big"
assert_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["counts"]["files"], d["counts"]["programs"])' "$t/out")" \
	"2 1" "the same tree named twice counts once"

# A program whose libc is not in the input: a warning in the table.
mkdir -p "$t/nolibc/bin"
cp "$corpus/bin/avx2-plain" "$t/nolibc/bin/"
scan "$t/nolibc"
assert_grep "$t/out" "warning: .*needs 'libc.so.6'" "missing libc is a warning in the table"

# --explain: an address past a symbol's end is not "in" it.
scan --explain avx2 "$corpus/bin/cpuid-var-stripped"
assert_no_grep "$t/out" 'not used' "--explain avx2 of a program using it"
python3 - "$t/out" <<'PY' || fail "--explain names a symbol for an address outside it"
import re, subprocess, sys
for line in open(sys.argv[1]):
    m = re.search(r"  (\S+)  0x([0-9a-f]+) in (\S+):", line)
    if not m:
        continue
    path, addr, sym = m.group(1), int(m.group(2), 16), m.group(3)
    out = subprocess.run(["nm", "-S", "-D", "--defined-only", path] if "/lib" in path else
                         ["nm", "-S", "--defined-only", path], capture_output=True, text=True).stdout
    ok = False
    for l in out.splitlines():
        f = l.split()
        if len(f) == 4 and f[3] == sym and int(f[0], 16) <= addr < int(f[0], 16) + int(f[1], 16):
            ok = True
    if not ok:
        print("not inside:", line.strip())
        sys.exit(1)
PY
# pku in libc: used only by library API nothing imports. The verdict must not
# say "not used" above the evidence.
scan --explain pku /usr/bin/ls
if grep -q '^  required\|^  guarded' "$t/out"; then
	assert_no_grep "$t/out" '^pku: not used' "--explain pku lists evidence under 'not used'"
fi
echo "ok: scan exit codes, large files, duplicates, missing libraries, --explain"
