#!/usr/bin/env bash
# The models tgvm emits boot: QEMU (TCG) accepts `tgvm model`'s -cpu string,
# the bundled guest boots with it, and its /proc/cpuinfo shows the needed
# flags and none of those the model removed or never presented. Then every
# model the demo prints (act 3's database, and the `--model auto` models of
# acts 7 and 8 for the bundled guest on Intel and AMD hosts) boots too, on a
# base of its vendor at the level of what it needs (not a K8 given BMI2).
source "$(dirname "$0")/lib.sh"
tgvm_locate
SRC=$(cd "$(dirname "$0")/../.." && pwd)

need=avx2,bmi2,popcnt
"$TGVM" model --need "$need" --json >"$TEST_TMP/model.json" || fail "tgvm model failed"
cpu=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["qemu_cpu"])' "$TEST_TMP/model.json")
case "$cpu" in *,enforce) ;; *) fail "-cpu string lacks enforce: $cpu" ;; esac

boot_guest --cpu "$cpu" --run "cat /proc/cpuinfo" --timeout 180 || fail "guest did not boot with -cpu $cpu"
[ "$GUEST_RC" = 0 ] || fail "cat /proc/cpuinfo in the guest failed (rc=$GUEST_RC)"

# Needed flags (and their closure) are there.
for f in avx2 bmi2 popcnt avx xsave bmi1 xsaveopt sse2 lm; do
	guest_has_flag "$f" || fail "guest lacks needed flag '$f' with -cpu $cpu"
done
# Removed flags and flags the model never presents are not.
absent=$(python3 - "$TEST_TMP/model.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
linux = lambda n: n.replace(".", "_").replace("-", "_")
names = {linux(n) for n in m["minus"]} | {"aes", "avx512f", "sha_ni", "fma", "movbe", "adx"}
names -= {linux(n) for n in m["features"]}
for n in sorted(names):
    print(n)
PY
)
[ -n "$absent" ] || fail "nothing to check for absence"
for f in $absent; do
	if guest_has_flag "$f"; then
		fail "guest shows '$f', which the model does not present (-cpu $cpu)"
	fi
done
echo "ok: guest booted with -cpu $cpu; has $need, lacks: $(echo $absent | tr '\n' ' ')"

# The demo's models. Act 3 as the demo runs it; acts 7 and 8 start the bundled
# guest with --model auto on an Intel and an AMD host: the model of a scan of
# its initramfs for that vendor (what tgvm_model_auto() computes).
"$TGVM" scan "$GUEST_INITRD" --json >"$TEST_TMP/scan.json" || fail "scan of the guest failed"
demo_models=()
demo_models+=("act3 $("$TGVM" model --need popcnt,sse4.2 --inventory "$SRC/examples/fleet.json" --json |
	python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["vendor"], m["base"], m["qemu_cpu"])')")
for v in intel amd; do
	demo_models+=("auto-$v $("$TGVM" model --report "$TEST_TMP/scan.json" --vendor $v --json |
		python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["vendor"], m["base"], m["qemu_cpu"])')")
done
for line in "${demo_models[@]}"; do
	read -r what vendor base dcpu <<<"$line"
	[ -n "$dcpu" ] || fail "$what: no model printed"
	# The base is a real CPU of the vendor that has every needed feature: nothing added.
	case ",$dcpu," in *,+*) fail "$what: base $base needs features added: $dcpu" ;; esac
	case "$vendor:$base" in
	amd:EPYC* | amd:Opteron* | intel:*) ;;
	*) fail "$what: base $base is not a $vendor model" ;;
	esac
	boot_guest --cpu "$dcpu" --run "cat /proc/cpuinfo" --timeout 240 ||
		fail "$what: the guest did not boot with -cpu $dcpu"
	[ "$GUEST_RC" = 0 ] || fail "$what: the guest failed under -cpu $dcpu (rc=$GUEST_RC)"
	guest_has_flag "$( [ $what = act3 ] && echo sse4_2 || echo bmi2)" ||
		fail "$what: the guest lacks a needed flag under -cpu $dcpu"
	echo "ok: $what ($vendor) boots with base $base: -cpu $dcpu"
done
