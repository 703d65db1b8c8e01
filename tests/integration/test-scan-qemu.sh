#!/usr/bin/env bash
# The labelled scan corpus against the exact oracle: run each program under
# qemu-x86_64 -cpu max with features removed, as expect.txt says. A program
# marked sigill-without=F must die of SIGILL without F (the scan calls F
# required); one marked runs-without=F must exit 0 (F is only guarded).
# TCG has no AVX-512, so v4 programs are not run.
source "$(dirname "$0")/common.sh"
set -e

command -v qemu-x86_64 >/dev/null || { echo "SKIP: no qemu-x86_64"; exit 77; }
: "${TGVM_SCAN_CORPUS:?the corpus directory (set by meson)}"
: "${TGVM_SCAN_EXPECT:?expect.txt (set by meson)}"

n=0
while read -r path scope rest; do
  case "$path" in '' | '#'*) continue ;; esac
  for kv in $rest; do
    key=${kv%%=*} feats=${kv#*=}
    case "$key" in sigill-without | runs-without) ;; *) continue ;; esac
    cpu=max,-${feats//,/,-}
    set +e
    qemu-x86_64 -cpu "$cpu" "$TGVM_SCAN_CORPUS/$path" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    set -e
    if [ "$key" = sigill-without ]; then
      [ "$rc" -eq 132 ] || fail "$path: expected SIGILL under -cpu $cpu, got exit $rc"
    else
      [ "$rc" -eq 0 ] || { cat "$TMP/err" >&2; fail "$path: expected to run under -cpu $cpu, got exit $rc"; }
    fi
    n=$((n + 1))
    ok
  done
done <"$TGVM_SCAN_EXPECT"
[ "$n" -ge 10 ] || fail "only $n qemu checks found in $TGVM_SCAN_EXPECT"
done_ok
