#!/usr/bin/env bash
# tgvm host models/detect/show.
source "$(dirname "$0")/common.sh"
set -e

run "$TGVM" host models
expect_rc 0
expect_out '^Skylake-Server-v4 +intel +x86-64-v4'
expect_out '^EPYC-Rome-v1 +amd +x86-64-v3'
expect_out '^Haswell-v1 +intel +x86-64-v3'
expect_out 'models from QEMU [0-9]+\.'

run "$TGVM" host models --json --all
expect_rc 0
[ "$(json_get "len([m for m in d if m['name']=='Skylake-Server' and m['alias_of']=='Skylake-Server-v1'])")" = 1 ] || fail "aliases"
[ "$(json_get "[m for m in d if m['name']=='Cascadelake-Server-v4'][0]['psabi']")" = x86-64-v4 ] || fail "psabi"
ok

# A fresh cache is rebuilt from QEMU; a corrupt one too.
export TGVM_CACHE_DIR="$TMP/cache"
run "$TGVM" host show Icelake-Server-v6
expect_rc 0; expect_out 'vendor: +intel'; expect_out 'avx512vbmi2'
ls "$TMP"/cache/qemu-cpu-models-*.json >/dev/null || fail "no cache written"
for f in "$TMP"/cache/qemu-cpu-models-*.json; do echo '{"format": "garbage' >"$f"; done
run "$TGVM" host show Icelake-Server-v6
expect_rc 0; expect_out 'avx512vbmi2'; expect_no_crash

run "$TGVM" host show Skylake
expect_rc 2; expect_err "unknown CPU model 'Skylake' \(did you mean 'Skylake-"

run "$TGVM" host detect --json
expect_rc 0
[ "$(json_get "'lm' in d['features'] and 'sse2' in d['features'] and d['vendor'] in ('intel','amd','other')")" = True ] || fail "detect"
# What cpuinfo shows must agree with what CPUID detection reports for user features.
for f in sse4_2 popcnt avx2; do
  if grep -qw "$f" /proc/cpuinfo; then
    name=${f/_/.}
    [ "$(json_get "'$name' in d['features']")" = True ] || fail "detect misses $f"
  fi
done
ok
run "$TGVM" host detect
expect_rc 0; expect_out '^psabi: +x86-64-v'

run "$TGVM" host frobnicate
expect_rc 2; expect_err "unknown sub-verb 'frobnicate'"
done_ok
