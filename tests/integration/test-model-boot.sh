#!/usr/bin/env bash
# The model tgvm emits boots: QEMU (TCG) accepts `tgvm model`'s -cpu string,
# the bundled guest boots with it, and its /proc/cpuinfo shows the needed
# flags and none of those the model removed or never presented.
source "$(dirname "$0")/lib.sh"
tgvm_locate

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
names = set(m["minus"]) | {"aes", "avx512f", "sha_ni", "fma", "sse4_2", "movbe", "adx"}
names -= set(m["features"])
for n in sorted(names):
    print(n.replace(".", "_").replace("-", "_"))
PY
)
[ -n "$absent" ] || fail "nothing to check for absence"
for f in $absent; do
	if guest_has_flag "$f"; then
		fail "guest shows '$f', which the model does not present (-cpu $cpu)"
	fi
done
echo "ok: guest booted with -cpu $cpu; has $need, lacks: $(echo $absent | tr '\n' ' ')"
