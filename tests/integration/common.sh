# SPDX-License-Identifier: MIT
# Assertions for integration tests that drive the built tgvm as a user would.
# Source it; $TGVM is the binary under test (set by meson).
set -u
: "${TGVM:?TGVM must point at the built tgvm}"
: "${TGVM_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
TMP=$(mktemp -d /tmp/tgvm-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
checks=0

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); }

# run CMD...: runs it, keeping stdout in $TMP/out, stderr in $TMP/err, status in $rc.
run() {
  set +e
  "$@" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  set -e
}
expect_rc() {
  [ "$rc" -eq "$1" ] || { cat "$TMP/out" "$TMP/err" >&2; fail "expected exit $1, got $rc: ${2:-}"; }
  ok
}
expect_out() {
  grep -qE -- "$1" "$TMP/out" || { cat "$TMP/out" >&2; fail "stdout lacks /$1/"; }
  ok
}
expect_no_out() {
  if grep -qE -- "$1" "$TMP/out"; then cat "$TMP/out" >&2; fail "stdout has /$1/"; fi
  ok
}
expect_err() {
  grep -qE -- "$1" "$TMP/err" || { cat "$TMP/err" >&2; fail "stderr lacks /$1/"; }
  ok
}
# No crash: a sanitizer report or a signal death is always a failure.
expect_no_crash() {
  if grep -qE "AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:|LeakSanitizer" "$TMP/err"; then
    cat "$TMP/err" >&2; fail "sanitizer report"
  fi
  [ "$rc" -lt 128 ] || fail "killed by signal $((rc - 128))"
  ok
}
json_get() { python3 -c "import json,sys; d=json.load(open('$TMP/out')); print(eval(sys.argv[1]))" "$1"; }
done_ok() { echo "ok: $checks checks"; }
