#!/usr/bin/env bash
# Exit codes, table-driven: every verb driven into each code tgvm(1) documents
# (0 yes, 1 no: refused or incompatible, 2 bad input, 3 failure). The offline
# verbs fully; vm and migrate only where no VM needs to run. Bad input prints
# nothing on stdout.
source "$(dirname "$0")/common.sh"
set -e
export TGVM_NETNS_PREFIX="tgve$$-" # no simulated host of a real run is seen
INV="$TGVM_SRC/examples/fleet.json"

# Inputs.
echo '{"required": ["popcnt"], "guarded": ["avx2"]}' >"$TMP/plain.json"
echo '{"required": ["popcnt"], "guraded": []}' >"$TMP/typo-report.json"
echo '{"tool": "tgvm-scan", "version": 1, "required": ["popcnt"], "guarded": [],
  "errors": [{"path": "/usr/bin/broken", "error": "truncated ELF file"}]}' >"$TMP/incomplete.json"
printf '{"hosts": [{"name": "a", "profile": "Haswell-v4", "cuont": 100}]}' >"$TMP/inv-key.json"
printf '{"hosts": [{"name": "a", "profile": "Haswell-v4", "x-rack": "r1"}]}' >"$TMP/inv-x.json"
printf '{"hosts": [{"name": "a", "profile": {"base": "Haswell-v4", "rmeove": ["avx2"]}}]}' >"$TMP/inv-prof.json"
for cap in '"-4G"' '"4Q"' '0' '"1180591620717411303424"'; do
  n=$((${n:-0} + 1))
  printf '{"hosts": [{"name": "a", "profile": "Haswell-v4"}], "memdevs": [{"name": "m", "capacity": %s, "hosts": ["a"]}]}' "$cap" >"$TMP/inv-cap$n.json"
done
printf '{"hosts": [{"name": "a", "profile": "Haswell-v4"}], "memdevs": [{"name": "m", "capacity": "1G", "hosts": ["a", "zz"]}]}' >"$TMP/inv-mdhost.json"
printf '{"hosts": [{"name": "a", "profile": "Haswell-v4"}], "memdevs": [{"name": "m", "capacity": "1G", "hosts": ["a"]}]}' >"$TMP/inv-md.json"
echo '{"vms": [{"name": "a", "requried": ["avx2"]}]}' >"$TMP/vms-key.json"
echo '{"vms": [{"name": "a", "required": ["avx2"]}]}' >"$TMP/vms.json"
long=$(printf 'v%.0s' $(seq 70))
python3 -c "import json; print(json.dumps({'vms': [{'name': 'a', 'required': ['sse2'] * 5000}]}))" >"$TMP/vms-big.json"
"$TGVM" model --need avx2 --json >"$TMP/model-report.json"
"$TGVM" scan /bin/true --json >"$TMP/scan-report.json"
ln -s "$TMP/loop-b" "$TMP/loop-a"; ln -s "$TMP/loop-a" "$TMP/loop-b"

# CODE ARGS... (ARGS with ${...} expanded here)
cases=$(cat <<CASES
0 help
0 help model
0 help host up
2 help nosuch
2 help model extra
0 version
0 --version
2 version --bogus
2 nosuchverb
0 model --need avx2,bmi2
0 model --need avx2 --inventory $INV --format qemu
0 model --report $TMP/plain.json --json
0 model --report $TMP/incomplete.json --allow-incomplete
0 model --report $TMP/model-report.json
0 model --report $TMP/scan-report.json
0 fleet --inventory $INV --report $TMP/model-report.json --report $TMP/scan-report.json
0 model --need avx2 --inventory $TMP/inv-x.json
0 model --need avx2 --inventory $TMP/inv-md.json
1 model --need sse4a --vendor intel
1 model --need xstore,xcrypt --inventory $INV
1 model --need avx512f --inventory $TMP/inv-x.json --vendor amd
2 model
2 model --need avx3
2 model --need avx2 extra
2 model --need avx2 --bogus
2 model --need avx2 --vendor arm
2 model --need avx2 --format yaml
2 model --need avx2 --accel hvf
2 model --report /nonexistent.json
2 model --report $TMP/typo-report.json
2 model --report $TMP/incomplete.json
2 model --need avx2 --inventory $TMP/inv-key.json
2 model --need avx2 --inventory $TMP/inv-prof.json
2 model --need avx2 --inventory $TMP/inv-cap1.json
2 model --need avx2 --inventory $TMP/inv-mdhost.json
3 model --need cet-ss
3 model --need avx512f --accel tcg
0 fleet --inventory $INV --vm a=avx2
0 fleet --inventory $INV --vms $TMP/vms.json --json
0 fleet --inventory $TMP/inv-md.json
0 fleet --inventory $INV --report $TMP/incomplete.json --allow-incomplete
2 fleet --inventory $INV
2 fleet --inventory $INV --vm a=avx2 extra
2 fleet --inventory $INV --vm a=avx3
2 fleet --inventory $INV --vm $long=avx2
2 fleet --inventory $INV --vms $TMP/vms-key.json
2 fleet --inventory $INV --vms $TMP/vms-big.json
2 fleet --inventory $INV --report $TMP/incomplete.json
2 fleet --inventory $TMP/inv-key.json --vm a=avx2
2 fleet --inventory $TMP/inv-cap1.json
2 fleet --inventory $TMP/inv-cap2.json
2 fleet --inventory $TMP/inv-cap3.json
2 fleet --inventory $TMP/inv-cap4.json
2 fleet --inventory $TMP/inv-mdhost.json --vm a=avx2
2 fleet --inventory $INV --vm a=avx2 --first-host nosuch
2 fleet --inventory $INV --vm a=avx2 --heatmap $TMP/h.gif
0 host models
0 host models --json --vendor amd
2 host models extra
2 host models --bogus
2 host models --vendor arm
0 host show Haswell-v4
0 host show Haswell-v4 --json
2 host show
2 host show Haswell-v4 --bogus
2 host show Haswell-v4 extra
2 host show Haswel-v4
0 host detect
2 host detect extra
2 host detect --name $long
2 host frobnicate
2 host
0 scan /bin/true
2 scan
2 scan --bogus /bin/true
2 scan /nonexistent
2 probe
2 vm bogus
2 vm start
2 vm stop nosuchvm
2 vm ping nosuchvm
2 vm console nosuchvm
2 migrate
2 migrate nosuchvm
2 migrate nosuchvm --to h --mode bogus
2 migrate status nosuchvm
2 migrate cancel nosuchvm
CASES
)
while read -r code args; do
  [ -n "$code" ] || continue
  # shellcheck disable=SC2086
  run "$TGVM" $args
  expect_no_crash
  [ "$rc" -eq "$code" ] || { cat "$TMP/out" "$TMP/err" >&2; fail "tgvm $args: exit $rc, documented $code"; }
  if [ "$code" = 2 ] && [ -s "$TMP/out" ]; then
    cat "$TMP/out" >&2; fail "tgvm $args: bad input, yet something on stdout"
  fi
  [ "$code" = 0 ] || [ -s "$TMP/err" ] || fail "tgvm $args: exit $code without a word on stderr"
  ok
done <<<"$cases"

# QEMU missing is a failure for every verb that needs it.
for args in "model --need avx2" "host models" "host show Haswell-v4" "fleet --inventory $INV --vm a=avx2"; do
  # shellcheck disable=SC2086
  TGVM_QEMU=/nonexistent/qemu TGVM_CACHE_DIR="$TMP/nocache" run "$TGVM" $args
  expect_rc 3 "tgvm $args without QEMU"
  expect_err "QEMU is not installed"
done

# The messages behind the codes name what is wrong.
run "$TGVM" model --need avx2 --inventory "$TMP/inv-key.json"
expect_err "inv-key.json', line 1: unknown key \"cuont\" in host 'a' \(did you mean \"count\"\?\)"
run "$TGVM" fleet --inventory "$INV" --vms "$TMP/vms-key.json"
expect_err "unknown key \"requried\" in vm 'a' \(did you mean \"required\"\?\)"
run "$TGVM" model --report "$TMP/incomplete.json"
expect_err "/usr/bin/broken"; expect_err "--allow-incomplete"
run "$TGVM" model --report "$TMP/incomplete.json" --allow-incomplete
expect_err "/usr/bin/broken"
run "$TGVM" model --need sse4a --vendor intel
expect_err "'sse4a' is a feature of amd"
run "$TGVM" model --need xstore,xcrypt --inventory "$INV"
expect_err "no machine in '.*fleet.json' can run it"
run "$TGVM" fleet --inventory "$INV" --vm "$long=avx2"
expect_err "63 characters, the limit for VM names"
run "$TGVM" fleet --inventory "$INV" --vms "$TMP/vms-big.json"
expect_err "more than 4096, the limit for a feature list"
run "$TGVM" fleet --inventory "$TMP/inv-mdhost.json" --vm a=avx2
expect_err "host 'zz' is not in the inventory"
done_ok
