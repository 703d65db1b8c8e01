#!/usr/bin/env bash
# tgvm model: the minimal model, its outputs, and bad input.
source "$(dirname "$0")/common.sh"
set -e

run "$TGVM" model --need avx2,bmi2
expect_rc 0
expect_out '^QEMU: +-cpu [A-Za-z0-9_.-]+(,[-+][a-z0-9_.-]+)*,enforce$'
expect_out "<cpu mode='custom' match='exact'"
expect_out "<model fallback='forbid'>"
expect_out 'vendor +intel'

run "$TGVM" model --need avx2,bmi2 --json
expect_rc 0
[ "$(json_get "'avx2' in d['features'] and 'bmi2' in d['features'] and 'avx' in d['features'] and 'xsave' in d['features']")" = True ] || fail "closure missing"
[ "$(json_get "'avx512f' in d['features'] or 'aes' in d['features']")" = False ] || fail "model has more than it needs"
[ "$(json_get "d['vendor']")" = intel ] || fail "default vendor"
ok

run "$TGVM" model --need sse4.2 --vendor amd --format qemu
expect_rc 0
cpu=$(cat "$TMP/out")
case "$cpu" in EPYC*|Opteron*|phenom*|qemu64*|athlon*) ok ;; *) fail "amd model expected, got $cpu" ;; esac

# QEMU accepts the string (no guest needed: -S and quit).
run "$TGVM" model --need avx2,bmi2,popcnt --format qemu
cpu=$(cat "$TMP/out")
printf '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n' |
  timeout 30 qemu-system-x86_64 -accel tcg -machine pc -cpu "$cpu" -display none -nodefaults -S -qmp stdio \
  >"$TMP/qemu.out" 2>"$TMP/qemu.err" || { cat "$TMP/qemu.err"; fail "QEMU refused -cpu $cpu"; }
ok

# A report from scan/probe works as input.
echo '{"tool":"tgvm-scan","required":["popcnt","sse4.2"],"guarded":["avx2","avx512f"]}' >"$TMP/r.json"
run "$TGVM" model --report "$TMP/r.json" --json
expect_rc 0
[ "$(json_get "'popcnt' in d['features'] and 'avx2' not in d['features'] and 'avx2' in d['lost']")" = True ] || fail "report input"
ok

# Inventory: how many machines can run it.
run "$TGVM" model --need avx512f --inventory "$TGVM_SRC/examples/fleet.json"
expect_rc 0
expect_out 'hosts: +[0-9]+ of [0-9]+ machines'

# Bad input: names the culprit, suggests, never crashes.
run "$TGVM" model --need avx3
expect_rc 2; expect_err "unknown CPU feature 'avx3' \(did you mean 'avx2'\?\)"; expect_no_crash
run "$TGVM" model --need avx2 --vendor arm
expect_rc 2; expect_err "unknown vendor 'arm'"
run "$TGVM" model
expect_rc 2; expect_err "--need"
run "$TGVM" model --report /nonexistent.json
expect_rc 2; expect_err "/nonexistent.json"
printf '{"required": [' >"$TMP/trunc.json"
run "$TGVM" model --report "$TMP/trunc.json"
expect_rc 2; expect_err "trunc.json', line 1, column"; expect_no_crash
run "$TGVM" model --need avx2 --format yaml
expect_rc 2; expect_err "unknown format 'yaml'"
TGVM_QEMU=/nonexistent/qemu run "$TGVM" model --need avx2
expect_rc 3; expect_err "QEMU is not installed"
done_ok
