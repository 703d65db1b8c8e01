#!/usr/bin/env bash
# The judge of tgvm scan on this machine's own /usr, bounded: a deterministic
# sample (every k-th ELF file of /usr/bin, /usr/sbin, /usr/libexec and
# /usr/lib, k chosen per directory to fit a byte budget) is scanned, and every
# file the scan says requires features beyond the x86-64 baseline is run under
# qemu-x86_64 with each of them removed (scan-system.py says how). A run that
# ends as it does with every feature present contradicts the scan: the test
# fails and names the file and the feature. bench/scan-system.sh judges every
# file. TGVM_SCAN_SYSTEM_BUDGET_MB sets the sample's size (default 30; the libraries the sampled programs load are scanned too).
source "$(dirname "$0")/common.sh"
set -e

command -v qemu-x86_64 >/dev/null || { echo "SKIP: no qemu-x86_64"; exit 77; }
command -v cc >/dev/null || { echo "SKIP: no C compiler for the library loader"; exit 77; }
cc -O2 -o "$TMP/dlopen-loader" "$TGVM_SRC/tests/integration/dlopen-loader.c" -ldl ||
  fail "cannot build the library loader"

run python3 "$TGVM_SRC/tests/integration/scan-system.py" --tgvm "$TGVM" \
  --loader "$TMP/dlopen-loader" --budget-mb "${TGVM_SCAN_SYSTEM_BUDGET_MB:-30}" -v
cat "$TMP/out"
[ "$rc" -ne 3 ] || { cat "$TMP/err" >&2; fail "the scan failed"; }
expect_out '^files scanned: [1-9]'
expect_out '^required beyond baseline: '
[ "$rc" -eq 0 ] || fail "the scan requires features these files run without (above)"
ok
done_ok
