#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tgvm probe as a user runs it: the labelled corpus of tgvm scan under
# qemu-x86_64 (each program's needed set found exactly, the cross-check with
# `tgvm scan --json` clean, AVX-512 code reported untestable), then a whole
# guest: the bundled guest's cpuwork needs popcnt and bmi2, and the model
# `tgvm model --report` makes of the probe report boots and runs it.
. "$(dirname "$0")/lib.sh"
tgvm_locate
command -v qemu-x86_64 >/dev/null || fail "qemu-x86_64 is not installed (run scripts/setup.sh)"
corpus=${TGVM_SCAN_CORPUS:-$TGVM_SRC/build-check/tests/data/scan/corpus}
expect=${TGVM_SCAN_EXPECT:-$TGVM_SRC/tests/data/scan/expect.txt}
[ -x "$corpus/bin/avx2-plain" ] || fail "no scan corpus in '$corpus' (build the project first)"
jobs=$(nproc)

# json_get FILE PYEXPR: evaluate PYEXPR over the document d.
json_get() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# check_minimal REPORT NAME: the report's "minimal" claim holds in its own run
# log. Every required feature is proven (a "minimal" run without it alone
# failed) or implied (that run passed; a proven feature needs it by the
# architecture); a dropped one's run passed and it is not required; the last
# verify run took away exactly what is not required, and passed.
check_minimal() {
	python3 - "$1" <<'PY' || fail "$2: the minimality claim is not borne out by the run log"
import json, sys
d = json.load(open(sys.argv[1]))
alone = {r["alone"]: r["outcome"] for r in d["run_log"] if r["phase"] == "minimal"}
req, pro, imp, drop = (set(d[k]) for k in ("required", "proven", "implied", "dropped"))
bad = []
if not d["minimal"]:
    bad.append("not minimal")
if req != pro | imp or req & drop:
    bad.append("required %s is not proven %s + implied %s" % (req, pro, imp))
bad += ["%s proven, its run alone: %s" % (f, alone.get(f)) for f in pro if alone.get(f, "pass") == "pass"]
bad += ["%s implied/dropped, its run alone: %s" % (f, alone.get(f)) for f in imp | drop if alone.get(f) != "pass"]
if len(alone) != d["minimal_runs"] or len(alone) != len(req | drop):
    bad.append("%d runs alone for %d features" % (len(alone), len(req | drop)))
v = [r for r in d["run_log"] if r["phase"] == "verify"][-1]
if v["outcome"] != "pass" or req & set(v["removed"]):
    bad.append("the verify run: %s without %s" % (v["outcome"], v["removed"]))
for b in bad:
    print(sys.argv[1] + ": " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

n=0
while read -r path scope rest; do
	case "$path" in '#'* | '') continue ;; esac
	want=""
	for kv in $rest; do
		case "$kv" in probe=*) want=${kv#probe=} ;; esac
	done
	[ -n "$want" ] || continue
	bin=$corpus/$path
	name=$(basename "$path")
	"$TGVM" scan --json "$bin" >"$TEST_TMP/$name.scan.json" || fail "$name: tgvm scan failed"
	rc=0
	"$TGVM" probe --json -j "$jobs" --timeout 60 --scan "$TEST_TMP/$name.scan.json" \
		--check 'test "$TGVM_PROBE_STATUS" = 0' -- "$bin" >"$TEST_TMP/$name.probe.json" \
		2>"$TEST_TMP/$name.probe.err" || rc=$?
	[ $rc = 0 ] || { cat "$TEST_TMP/$name.probe.err" >&2; fail "$name: tgvm probe exited $rc"; }
	got=$(json_get "$TEST_TMP/$name.probe.json" '",".join(sorted(d["proven"]))')
	[ "$want" = none ] && want=""
	assert_eq "$got" "$(echo "$want" | tr , '\n' | sort | paste -sd, -)" \
		"$name: features proven needed by tgvm probe"
	assert_eq "$(json_get "$TEST_TMP/$name.probe.json" 'd["verified"]')" True "$name: verified"
	check_minimal "$TEST_TMP/$name.probe.json" "$name"
	got=$(json_get "$TEST_TMP/$name.probe.json" '",".join(sorted(d["required"]))')
	assert_eq "$(json_get "$TEST_TMP/$name.probe.json" 'd["scan"]["false_negative"]')" "[]" \
		"$name: static false negatives"
	assert_eq "$(json_get "$TEST_TMP/$name.probe.json" 'd["scan"]["false_positive"]')" "[]" \
		"$name: static false positives"
	runs=$(json_get "$TEST_TMP/$name.probe.json" 'd["runs"]')
	echo "ok $name: {${got}} in $runs runs, $(json_get "$TEST_TMP/$name.probe.json" 'round(d["wall_ms"])') ms"
	n=$((n + 1))
done <"$expect"
[ $n -ge 8 ] || fail "only $n corpus programs carry a probe= expectation"

# Output comparison (no --check): avx2-plain prints the same with or without
# features it does not need; the SIGILL names avx2 straight away.
"$TGVM" probe --json -j "$jobs" -- "$corpus/bin/avx2-plain" >"$TEST_TMP/plain.json" ||
	fail "avx2-plain: tgvm probe (output comparison) failed"
assert_eq "$(json_get "$TEST_TMP/plain.json" '",".join(sorted(d["proven"]))')" "avx,avx2,sse4.1,xsave" \
	"avx2-plain by output comparison"
check_minimal "$TEST_TMP/plain.json" "avx2-plain by output comparison"
# bmi1 and xsaveopt come with avx2 and xsave on every real CPU, but the
# program runs without either: the search adds them, their runs drop them.
assert_eq "$(json_get "$TEST_TMP/plain.json" '",".join(sorted(set(d["required"]) & {"bmi1", "xsaveopt"}))')" "" \
	"avx2-plain: companions it runs without are not required"
assert_eq "$(json_get "$TEST_TMP/plain.json" '",".join(sorted(set(d["dropped"]) & {"bmi1", "xsaveopt"}))')" "bmi1,xsaveopt" \
	"avx2-plain: companions reported dropped"
json_get "$TEST_TMP/plain.json" '[r["detail"] for r in d["run_log"] if r["outcome"]=="sigill"]' |
	grep -q 'needs avx' || fail "no SIGILL run named the avx/avx2 instruction it died on"

# A program whose output depends on a feature it only uses after a check:
# by output, rdrand is needed (the count printed changes); by status, not.
"$TGVM" probe --json -j "$jobs" -- "$corpus/bin/inline-asm" >"$TEST_TMP/ia.json" || true
json_get "$TEST_TMP/ia.json" 'd["required"]' | grep -q rdrand ||
	fail "inline-asm: output comparison should see rdrand change the output"

# AVX-512 code: TCG cannot run it; the probe says so and guesses nothing.
rc=0
"$TGVM" probe --json -- "$corpus/bin/levels-v4" >"$TEST_TMP/v4.json" 2>"$TEST_TMP/v4.err" || rc=$?
assert_eq "$rc" 3 "levels-v4: exit status when the reference run cannot run"
assert_eq "$(json_get "$TEST_TMP/v4.json" 'd["reference_ok"]')" False "levels-v4: reference_ok"
json_get "$TEST_TMP/v4.json" 'd["untestable"]' | grep -q "'avx512f'" ||
	fail "levels-v4: avx512f not reported untestable"
assert_eq "$(json_get "$TEST_TMP/v4.json" 'd["required"]')" "[]" "levels-v4: nothing guessed"
assert_grep "$TEST_TMP/v4.err" 'needs avx512f' "levels-v4: the failing instruction named"

# A static false negative is loud: a scan report that misses popcnt.
printf '{"tool":"tgvm-scan","version":1,"required":[],"guarded":["popcnt"]}\n' >"$TEST_TMP/bad-scan.json"
rc=0
"$TGVM" probe -j "$jobs" --scan "$TEST_TMP/bad-scan.json" -- "$corpus/bin/cpu-supports" \
	>"$TEST_TMP/fn.out" 2>"$TEST_TMP/fn.err" || rc=$?
assert_eq "$rc" 1 "exit status with a static false negative"
assert_grep "$TEST_TMP/fn.err" 'STATIC FALSE NEGATIVE.*popcnt' "the false negative is printed loudly"

# A program that hangs without popcnt (it checks, then spins): the timeout
# turns the hang into a failure with its reason, and popcnt is still found.
cat >"$TEST_TMP/hang.c" <<'C'
#include <stdio.h>
int main(void)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("popcnt"))
		for (;;)
			;
	puts("ok");
	return 0;
}
C
${CC:-cc} -O2 -o "$TEST_TMP/hang" "$TEST_TMP/hang.c" || fail "cannot compile the hanging program"
"$TGVM" probe --json -j "$jobs" --timeout 3 -- "$TEST_TMP/hang" >"$TEST_TMP/hang.json" ||
	fail "probe of the hanging program failed"
assert_eq "$(json_get "$TEST_TMP/hang.json" '",".join(d["required"])')" popcnt "hanging program needs"
assert_eq "$(json_get "$TEST_TMP/hang.json" 'sorted(set(r["outcome"] for r in d["run_log"]) - {"pass"})')" \
	"['timeout']" "hanging program: failures are timeouts"
json_get "$TEST_TMP/hang.json" '[r["detail"] for r in d["run_log"]]' | grep -q 'killed after 3 s' ||
	fail "hanging program: no run says it was killed"

# Errors a user meets.
rc=0
"$TGVM" probe -- "$TEST_TMP/no-such-program" 2>"$TEST_TMP/e1" || rc=$?
[ $rc != 0 ] || fail "probing a missing program succeeded"
rc=0
"$TGVM" probe 2>"$TEST_TMP/e2" || rc=$?
assert_eq "$rc" 2 "no program: usage error"

# ---- VM mode: the bundled guest's cpuwork (popcnt + bmi2, unconditionally) ----
guest_ensure
rc=0
"$TGVM" probe --vm --json -j "$jobs" --timeout 240 --candidates popcnt,bmi1,bmi2,abm,movbe,sse4.2,avx2 \
	--run cpuwork >"$TEST_TMP/vm.json" 2>"$TEST_TMP/vm.err" || rc=$?
[ $rc = 0 ] || { cat "$TEST_TMP/vm.err" >&2; fail "probe --vm exited $rc"; }
got=$(json_get "$TEST_TMP/vm.json" '",".join(sorted(d["required"]))')
assert_eq "$got" "bmi2,popcnt" "VM mode: cpuwork needs"
# Each failing run's SIGILL, reported by the guest kernel, was decoded to the
# feature taken away (a hint), and the search stays within the issue's bound.
json_get "$TEST_TMP/vm.json" '"\n".join("%s %s %s" % (r["outcome"], r["hint"], r.get("fault", "-"))
	for r in d["run_log"] if r["phase"] == "search" and r["outcome"] != "pass")' >"$TEST_TMP/vm.fails"
[ -s "$TEST_TMP/vm.fails" ] || fail "VM mode: no failing search run"
assert_no_grep "$TEST_TMP/vm.fails" '^[a-z-]+ False' "VM mode: a failing run without a decoded hint"
assert_grep "$TEST_TMP/vm.fails" 'pdep .* needs bmi2$' "VM mode: cpuwork's pdep decoded"
read -r search n k bound < <(json_get "$TEST_TMP/vm.json" \
	'"%d %d %d %.2f" % (d["search_runs"], len(d["candidates"]), len(d["required"]),
	 __import__("math").log2(len(d["candidates"]) / len(d["required"])) * len(d["required"]) + 2 * len(d["required"]))')
python3 -c "import sys; sys.exit(0 if $search <= $bound else 1)" ||
	fail "VM mode: $search search runs for k=$k among n=$n, over the bound $bound"
echo "ok vm cpuwork: {$got} in $(json_get "$TEST_TMP/vm.json" 'd["runs"]') runs ($search search," \
	"bound $bound for k=$k n=$n, $(json_get "$TEST_TMP/vm.json" 'd["hinted"]') hinted)," \
	"$(json_get "$TEST_TMP/vm.json" 'round(d["wall_ms"])') ms"

# The minimal model from the probe report boots and runs cpuwork; without
# bmi2 it does not.
cpu=$("$TGVM" model --report "$TEST_TMP/vm.json" --format qemu) || fail "tgvm model --report on a probe report"
echo "model: $cpu"
boot_guest --cpu "$cpu" --mem 128 --run cpuwork --timeout 240 || fail "the probe's model did not boot"
assert_eq "$GUEST_RC" 0 "cpuwork under the probe's model"
guest_output | grep -q '^CPUWORK ok' || fail "cpuwork did not print its result"
