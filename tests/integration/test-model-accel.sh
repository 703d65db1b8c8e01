#!/usr/bin/env bash
# Every -cpu string tgvm model prints for TCG starts under TCG: QEMU itself
# (-S, enforce) accepts it, over every single feature TCG can give, the psABI
# levels and both vendors; the JSON's tcg_missing agrees with QEMU. The same
# for KVM only where /dev/kvm runs guests (TGVM_TEST_KVM=1; not on PVM hosts).
source "$(dirname "$0")/common.sh"
set -e

# starts CPU ACCEL: QEMU accepts -cpu CPU under ACCEL (no guest runs: -S, then quit).
starts() {
  printf '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n' |
    timeout 60 qemu-system-x86_64 -accel "$2" -machine pc -cpu "$1" -display none -nodefaults \
      -S -qmp stdio >/dev/null 2>"$TMP/qemu.err"
}

# What TCG can give, as QEMU's 'max' expands under TCG (tgvm's database of it).
run "$TGVM" host show max --json
expect_rc 0
feats=$(json_get "' '.join(d['features'])")
[ -n "$feats" ] || fail "no features for max"

# Each feature alone (the vendor tgvm picks), and combinations for each vendor.
needs=""
for f in $feats; do needs="$needs $f/"; done
for n in avx2,bmi2,popcnt x86_64_v2 x86_64_v3 sse4a clzero aes,pclmulqdq sha-ni,rdrand; do
  needs="$needs $n/ $n/intel $n/amd"
done
needs=${needs//x86_64_v2/cx16,lahf_lm,popcnt,sse4.1,sse4.2,ssse3,pni}
needs=${needs//x86_64_v3/avx,avx2,bmi1,bmi2,f16c,fma,abm,movbe,xsave}

: >"$TMP/cpus"
for nv in $needs; do
  n=${nv%/*} vendor=${nv#*/}
  {
    run "$TGVM" model --need "$n" ${vendor:+--vendor "$vendor"} --accel tcg --json
    expect_no_crash
    case $rc in
      0) ;;
      1|3) continue ;; # refused (another vendor's feature) or TCG cannot give it: nothing printed
      *) cat "$TMP/err" >&2; fail "model --need $n --vendor '$vendor': exit $rc" ;;
    esac
    [ "$(json_get "d['accel']")" = tcg ] || fail "accel for --need $n"
    [ "$(json_get "d['tcg_missing']")" = "[]" ] || fail "tcg_missing for a TCG model: --need $n"
    json_get "d['qemu_cpu']" >>"$TMP/cpus"
  }
done
sort -u "$TMP/cpus" -o "$TMP/cpus"
nmodels=$(wc -l <"$TMP/cpus")
[ "$nmodels" -gt 20 ] || fail "only $nmodels models printed"
while read -r cpu; do
  starts "$cpu" tcg || { cat "$TMP/qemu.err" >&2; fail "QEMU (TCG) refused -cpu $cpu"; }
  ok
done <"$TMP/cpus"

# Under auto, a model TCG can start is for TCG; one it cannot is for KVM and
# names what TCG lacks: QEMU refuses exactly then.
for n in avx2 x86-64-v3-set avx512f,avx512bw; do
  n=${n//x86-64-v3-set/avx2,fma,f16c,bmi2,movbe,abm}
  run "$TGVM" model --need "$n" --json
  expect_rc 0
  cpu=$(json_get "d['qemu_cpu']")
  missing=$(json_get "len(d['tcg_missing'])")
  if starts "$cpu" tcg; then
    [ "$missing" = 0 ] || fail "QEMU starts $cpu under TCG, tcg_missing is not empty"
  else
    [ "$missing" != 0 ] || fail "QEMU refuses $cpu under TCG, tcg_missing is empty"
    [ "$(json_get "d['accel']")" = kvm ] || fail "a model TCG refuses is not marked kvm"
  fi
  ok
done

# TCG cannot present AVX-512: a TCG model of it is refused (exit 3), naming it.
run "$TGVM" model --need avx512f --accel tcg
expect_rc 3; expect_err "avx512f"; expect_no_crash

if [ "${TGVM_TEST_KVM:-0}" = 1 ]; then
  for n in avx2,bmi2,popcnt avx512f; do
    run "$TGVM" model --need "$n" --accel kvm --format qemu
    expect_rc 0
    starts "$(cat "$TMP/out")" kvm || { cat "$TMP/qemu.err" >&2; fail "KVM refused $(cat "$TMP/out")"; }
    ok
  done
else
  echo "skip: KVM checks (set TGVM_TEST_KVM=1 where /dev/kvm runs guests; here it is PVM-backed)"
fi
echo "ok: $nmodels models started under TCG"
done_ok
