#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tgvm probe against the obvious alternative, in the same run on the same
# machine: one run per candidate feature (take it away, run, compare with the
# reference). Programs of the scan corpus under qemu-x86_64, then the bundled
# guest's cpuwork under qemu-system-x86_64 (skipped with BENCH_PROBE_VM=0).
# Both sides use the same number of parallel jobs. Usage: bench-probe.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: bench-probe.sh BUILD_DIR}
tgvm=$build/tgvm
corpus=$build/tests/data/scan/corpus
jobs=${BENCH_PROBE_JOBS:-$(nproc)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tgvm-bench-probe.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
[ -x "$tgvm" ] || { echo "no tgvm in $build" >&2; exit 1; }
[ -d "$corpus/bin" ] || { echo "no scan corpus in $corpus" >&2; exit 1; }

now() { date +%s.%N; }
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# baseline_user PROG CANDIDATES...: one qemu-x86_64 run per candidate, $jobs at
# a time, judged like the probe runs here (exit status); prints the runs and
# leaves the features whose removal changed the status in base.needed.
baseline_user() {
	local prog=$1
	shift
	qemu-x86_64 -cpu max "$prog" >"$tmp/ref.out" 2>/dev/null && echo 0 >"$tmp/ref.rc" || echo $? >"$tmp/ref.rc"
	printf '%s\n' "$@" | xargs -P "$jobs" -I{} sh -c '
		rc=0; qemu-x86_64 -cpu "max,-{}" "$1" >"$2/b-{}.out" 2>/dev/null || rc=$?
		if [ "$rc" != "$(cat "$2/ref.rc")" ]; then echo {}; fi' \
		_ "$prog" "$tmp" >"$tmp/base.needed"
	echo $(($# + 1))
}

printf '%-14s %5s %5s | %6s %9s | %9s | %8s %9s %6s | %6s\n' program cands found "runs" "wall s" "runs+scan" "1/feat" "wall s" "found" "ratio"
for p in avx2-plain cpu-supports levels-v2 levels-v3 inline-asm cpuid-var ifunc clones-static; do
	bin=$corpus/bin/$p
	t0=$(now)
	"$tgvm" probe --json -j "$jobs" --check 'test "$TGVM_PROBE_STATUS" = 0' -- "$bin" >"$tmp/p.json" || true
	t1=$(now)
	mapfile -t cands < <(json "$tmp/p.json" '"\n".join(d["candidates"])')
	runs=$(json "$tmp/p.json" 'd["runs"]')
	found=$(json "$tmp/p.json" 'len(d["required"])')
	# With a scan report its required features are tried first.
	"$tgvm" scan --json "$bin" >"$tmp/s.json"
	"$tgvm" probe --json -j "$jobs" --scan "$tmp/s.json" --check 'test "$TGVM_PROBE_STATUS" = 0' \
		-- "$bin" >"$tmp/ps.json" || true
	sruns=$(json "$tmp/ps.json" 'd["runs"]')
	t2=$(now)
	bruns=$(baseline_user "$bin" "${cands[@]}")
	t3=$(now)
	printf '%-14s %5s %5s | %6s %9.2f | %9s | %8s %9.2f %6s | %5.1fx\n' "$p" "${#cands[@]}" "$found" \
		"$runs" "$(echo "$t1 - $t0" | bc)" "$sruns" "$bruns" "$(echo "$t3 - $t2" | bc)" \
		"$(wc -l <"$tmp/base.needed")" "$(echo "scale=2; $bruns / $runs" | bc)"
done

[ "${BENCH_PROBE_VM:-1}" = 1 ] || exit 0
cache=${TGVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tgvm}/guest
[ -s "$cache/vmlinuz" ] || { echo "(no bundled guest: VM row skipped; run make setup)"; exit 0; }
cands=popcnt,bmi1,bmi2,abm,movbe,sse4.2,avx2
t0=$(now)
"$tgvm" probe --vm --json -j "$jobs" --timeout 120 --candidates "$cands" --run cpuwork >"$tmp/vm.json" || true
t1=$(now)
mapfile -t vc < <(json "$tmp/vm.json" '"\n".join(d["candidates"])')
# Baseline: the reference boot and one boot per candidate.
t2=$(now)
printf '%s\n' none "${vc[@]}" | xargs -P "$jobs" -I{} sh -c '
	if [ "{}" = none ]; then cpu=max; else cpu="max,-{}"; fi
	timeout 120 qemu-system-x86_64 -accel tcg -cpu "$cpu" -m 128 -smp 1 -display none -monitor none \
		-serial stdio -nic none -no-reboot -kernel "$1/vmlinuz" -initrd "$1/initramfs.img" \
		-append "console=ttyS0 panic=-1 quiet cryptomgr.notests no_timer_check tgvm.poweroff=1 tgvm.run=cpuwork" \
		</dev/null 2>/dev/null | grep -a -q "TGVM-RESULT rc=0" || echo {}' _ "$cache" >/dev/null
t3=$(now)
printf '%-14s %5s %5s | %6s %9.2f | %9s | %8s %9.2f %6s | %5.1fx\n' "vm:cpuwork" "${#vc[@]}" \
	"$(json "$tmp/vm.json" 'len(d["required"])')" "$(json "$tmp/vm.json" 'd["runs"]')" \
	"$(echo "$t1 - $t0" | bc)" - "$((${#vc[@]} + 1))" "$(echo "$t3 - $t2" | bc)" - \
	"$(echo "scale=2; (${#vc[@]} + 1) / $(json "$tmp/vm.json" 'd["runs"]')" | bc)"
echo "runs include the reference (and for tgvm probe the verification run); jobs=$jobs."
echo "1/feat found: features whose removal alone changed the result (no dependency closure)."
