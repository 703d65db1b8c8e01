#!/usr/bin/env bash
# tgvm fleet: policies on the bundled fleet, heat map, bad input.
source "$(dirname "$0")/common.sh"
set -e
INV="$TGVM_SRC/examples/fleet.json"

run "$TGVM" fleet --inventory "$INV" --vms "$TGVM_SRC/examples/vms.json" --heatmap "$TMP/h.svg"
expect_rc 0
expect_out '^hpc-avx512 +x86-64-v4, 5 features .*cannot run'
expect_out 'heat map written'
grep -q '<svg' "$TMP/h.svg" || fail "no svg"
python3 -c "import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])" "$TMP/h.svg" || fail "svg is not XML"
ok

run "$TGVM" fleet --inventory "$INV" --vm plain= --vm v3=avx2,fma:avx512f --vm v4=avx512f --json
expect_rc 0
# Minimal never gives fewer machines than baseline, and runs whatever some host can run.
python3 - "$TMP/out" <<'PY' || fail "policy invariants"
import json, sys
d = json.load(open(sys.argv[1]))
vms = {v["name"]: v["policies"] for v in d["vms"]}
for name, p in vms.items():
    assert p["minimal"]["machines"] >= p["baseline"]["machines"], name
    assert p["minimal"]["machines"] >= p["passthrough"]["machines"], name
assert not vms["v4"]["baseline"]["runs"] and vms["v4"]["minimal"]["runs"]
assert "avx512f" in vms["v4"]["baseline"]["blocking"]
assert vms["plain"]["baseline"]["runs"]
PY
ok

run "$TGVM" fleet --inventory "$INV" --vm a=avx2 --heatmap "$TMP/h.png"
expect_rc 0
head -c 8 "$TMP/h.png" | od -c | grep -q 'P   N   G' || fail "not a PNG"
ok

# A VM of no vendor is placed per vendor: its machines are every vendor's.
run "$TGVM" fleet --inventory "$INV" --vm a= --json
[ "$(json_get "d['vms'][0]['policies']['minimal']['machines'] == d['machines']")" = True ] || fail "per-vendor placement"
[ "$(json_get "sorted(d['vms'][0]['policies']['minimal']['machines_by_vendor'])")" = "['amd', 'intel']" ] || fail "by vendor"
ok
# Cross-vendor moves only when asked: a VM of one vendor stays on it.
echo '{"vms": [{"name": "a", "required": [], "vendor": "intel"}]}' >"$TMP/vi.json"
run "$TGVM" fleet --inventory "$INV" --vms "$TMP/vi.json" --json
n1=$(json_get "d['vms'][0]['policies']['minimal']['machines']")
run "$TGVM" fleet --inventory "$INV" --vms "$TMP/vi.json" --json --cross-vendor
n2=$(json_get "d['vms'][0]['policies']['minimal']['machines']")
[ "$n2" -gt "$n1" ] || fail "cross-vendor should widen ($n1 -> $n2)"
ok

# Bad input.
printf '{\n  "hosts": [\n    {"name": "a" "profile": "Haswell-v4"}\n  ]\n}\n' >"$TMP/bad.json"
run "$TGVM" fleet --inventory "$TMP/bad.json" --vm a=avx2
expect_rc 2; expect_err "bad.json', line 3, column"; expect_no_crash
printf '{"hosts": [{"name": "a", "profile": "Haswel-v4"}]}' >"$TMP/bad2.json"
run "$TGVM" fleet --inventory "$TMP/bad2.json" --vm a=avx2
expect_rc 2; expect_err "unknown CPU model 'Haswel-v4' \(did you mean 'Haswell-v4'\?\)"
run "$TGVM" fleet --inventory "$INV" --vm a=avx2,sse9
expect_rc 2; expect_err "'sse9'"
run "$TGVM" fleet --inventory "$INV"
expect_rc 2; expect_err "no VMs"
run "$TGVM" fleet --inventory "$INV" --vm a=avx2 --first-host nosuch
expect_rc 2; expect_err "unknown host 'nosuch'"
head -c 3000 /dev/urandom >"$TMP/noise.json"
run "$TGVM" fleet --inventory "$TMP/noise.json" --vm a=avx2
expect_rc 2; expect_no_crash
done_ok
