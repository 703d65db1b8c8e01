#!/usr/bin/env bash
# tgvm scan on real software from this machine: ls, openssl (libcrypto),
# zstd, python3 and sqlite3 with their libraries. Each runs under
# qemu-x86_64 -cpu qemu64 (x86-64-v1, no AES, no AVX), so what the scan calls
# required must fit in x86-64-v1; what they dispatch to (AVX2, AVX-512, AES,
# SHA, ...) must still show up as guarded.
source "$(dirname "$0")/common.sh"
set -e

command -v qemu-x86_64 >/dev/null || { echo "SKIP: no qemu-x86_64"; exit 77; }

# v1_and_guarded PROG GUARDED... : required within x86-64-v1, each GUARDED listed.
v1_and_guarded() {
  local prog=$1 f
  shift
  [ -x "$prog" ] || fail "$prog is missing (scripts/setup.sh installs it)"
  run "$TGVM" scan --json "$prog"
  expect_rc 0 "scan $prog"
  [ "$(json_get "d['programs'][0]['psabi_required']")" = x86-64-v1 ] ||
    fail "$prog: required $(json_get "d['programs'][0]['required']") is beyond x86-64-v1"
  for f in "$@"; do
    [ "$(json_get "'$f' in d['programs'][0]['guarded']")" = True ] ||
      fail "$prog: $f missing from guarded $(json_get "d['programs'][0]['guarded']")"
  done
  ok
}

# runs_v1 CMD...: the program runs on a CPU with only x86-64-v1 (QEMU's qemu64)
runs_v1() {
  run qemu-x86_64 -cpu qemu64 "$@"
  expect_rc 0 "qemu-x86_64 -cpu qemu64 $*"
}

echo hello >"$TMP/in.txt"

v1_and_guarded /bin/ls avx2 avx512f
runs_v1 /bin/ls /

v1_and_guarded /usr/bin/openssl aes pclmulqdq sha-ni avx2 avx512f
runs_v1 /usr/bin/openssl dgst -sha256 "$TMP/in.txt"
expect_out 'SHA2-256'
runs_v1 /usr/bin/openssl enc -aes-128-cbc -pbkdf2 -k secret -in "$TMP/in.txt" -out "$TMP/in.enc"

# zstd keeps its BMI2 flag in structures: ZSTD_DCtx.bmi2 far into the
# decompression context, ZSTD_CCtx.bmi2 at offset 8 (told from other
# structures' offset 8 by the fields used beside it), handed down as an
# argument, on the stack, through function pointers, and as a 0 that
# dictionary loading passes. The BMI2 twins stay guarded.
v1_and_guarded /usr/bin/zstd avx2 avx512f bmi2
runs_v1 /usr/bin/zstd -q -f "$TMP/in.txt" -o "$TMP/in.zst"
runs_v1 /usr/bin/zstd -q -d -f "$TMP/in.zst" -o "$TMP/out.txt"
cmp -s "$TMP/in.txt" "$TMP/out.txt" || fail "zstd round trip under qemu64"

v1_and_guarded "$(readlink -f /usr/bin/python3)" avx2
runs_v1 "$(readlink -f /usr/bin/python3)" -c 'print(6 * 7)'
expect_out '^42$'

v1_and_guarded /usr/bin/sqlite3 avx2
runs_v1 /usr/bin/sqlite3 :memory: 'select 6 * 7;'
expect_out '^42$'

# The bundled guest's initramfs (when built): busybox and the project's
# helpers need nothing beyond x86-64-v1, while cpuwork executes POPCNT and
# BMI2's PDEP unconditionally (guest/README.md) and must say so.
initrd=${TGVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tgvm}/guest/initramfs.img
if [ -s "$initrd" ]; then
  run "$TGVM" scan --json "$initrd"
  expect_rc 0 "scan $initrd"
  [ "$(json_get "sorted(p['path'] for p in d['programs'] if p['psabi_required'] != 'x86-64-v1')")" = "['/bin/cpuwork']" ] ||
    fail "initramfs: programs beyond v1: $(json_get "[(p['path'], p['required']) for p in d['programs']]")"
  [ "$(json_get "[p for p in d['programs'] if p['path'] == '/bin/cpuwork'][0]['required']")" != "" ] &&
    [ "$(json_get "all(f in [p for p in d['programs'] if p['path'] == '/bin/cpuwork'][0]['required'] for f in ('popcnt', 'bmi2'))")" = True ] ||
    fail "initramfs: cpuwork must require popcnt and bmi2"
  ok
fi

done_ok
