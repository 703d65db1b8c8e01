#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Live migration, plain QEMU (its defaults, `tgvm migrate --qemu-defaults`)
# against tgvm's precopy and auto modes, in one run, between two simulated
# hosts, for an idle guest and one dirtying memory fast, at several sizes, on
# each machine kind (q35, tgvm's default, and microvm: virtio-mmio, the least
# device state; plain QEMU is given the same -machine as tgvm).
# Every case runs RUNS times (alternating direction; the modes take turns run
# by run); the table gives median,
# p95 and max of the network blackout (UDP probe), the vCPU blackout (STOP ->
# RESUME) and QEMU's downtime, the median total time and bytes moved, and the
# probe's floor (its longest silence with no migration, measured before each
# run). Raw timelines are kept in $OUT (default out/bench-migrate).
#
#   bench/bench-migrate.sh [BUILD_DIR]
#   env: SIZES="512M 1G 2G"  RUNS=5  LOADS="idle dirty"  MODES="plain precopy auto"
#        MACHINES="q35 microvm"
#        (also: autobuf = precopy with the kernel's autotuned socket buffers)
#        DIRTY="memwriter:--mib=256:--rate=max"  TIMEOUT_MS=120000
#        OLD_BUILD=DIR: modes named old-MODE run DIR/tgvm instead (the same move
#        by an older build, alternating with the new one in this run)
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
T=$build/tgvm
SIZES=${SIZES:-512M 1G 2G}
RUNS=${RUNS:-5}
LOADS=${LOADS:-idle dirty}
MODES=${MODES:-plain precopy auto}
MACHINES=${MACHINES:-q35 microvm}
DIRTY=${DIRTY:-memwriter:--mib=256:--rate=max}
TIMEOUT_MS=${TIMEOUT_MS:-120000}
OUT=${OUT:-$here/out/bench-migrate}
[ "$(id -u)" = 0 ] || { echo "bench-migrate: needs root (network namespaces); skipped"; exit 0; }
[ -x "$T" ] || { echo "bench-migrate: no $T (make build first)"; exit 1; }

export TGVM_NETNS_PREFIX=tgbm$$-
export TGVM_STATE_DIR=$(mktemp -d /tmp/tgvm-bench-state-XXXXXX)
export TGVM_ACCEL=tcg
A=bm-a B=bm-b VM=bm-vm
mkdir -p "$OUT"
cleanup() {
  "$T" vm stop $VM >/dev/null 2>&1
  "$T" host down >/dev/null 2>&1
  rm -rf "$TGVM_STATE_DIR"
}
trap cleanup EXIT
"$T" host up $A $B >/dev/null || exit 1

wait_answer() { # the guest answers the probe
  for _ in $(seq 1 120); do
    "$T" vm ping $VM --duration 0.3 --interval-us 1000 >/dev/null 2>&1 && return 0
    sleep 1
  done
  return 1
}

rows=()
for machine in $MACHINES; do
for size in $SIZES; do
  for load in $LOADS; do
    wl=udp-responder
    [ "$load" = dirty ] && wl="udp-responder,$DIRTY"
    "$T" vm stop $VM >/dev/null 2>&1
    "$T" vm start $VM --host $A --mem "$size" --workload "$wl" --machine "$machine" >/dev/null || exit 1
    wait_answer || { echo "bench-migrate: guest of $size did not answer"; exit 1; }
    sleep 3 # let the writer fill its region
    here_host=$A
    # Modes take turns run by run, so that a busy spell on this shared machine
    # falls on every mode alike and the ratios stay fair.
    for mode in $MODES; do
      : >"$OUT/$machine-$size-$load-$mode.jsonl"
      rows+=("$machine $size $load $mode $OUT/$machine-$size-$load-$mode.jsonl")
    done
    for i in $(seq 1 "$RUNS"); do
      for mode in $MODES; do
        f="$OUT/$machine-$size-$load-$mode.jsonl"
        to=$([ "$here_host" = $A ] && echo $B || echo $A)
        args=(--to "$to" --json --timeout "$TIMEOUT_MS")
        bin=$T
        case $mode in old-*) bin=${OLD_BUILD:?old-$mode needs OLD_BUILD}/tgvm ;; esac
        case ${mode#old-} in
          plain) args+=(--qemu-defaults) ;;
          precopy) args+=(--mode precopy) ;;
          autobuf) args+=(--mode precopy --stream-buffer auto) ;; # kernel-sized socket buffers
          auto) args+=(--mode auto --converge-timeout 5000) ;;
        esac
        printf '\r%-60s' "$machine $size $load $mode run $i/$RUNS" >&2
        if j=$("$bin" migrate $VM "${args[@]}" 2>/dev/null); then
          here_host=$to
        fi
        # one line per run; a failed run is kept with its status
        python3 -c 'import json,sys; print(json.dumps(json.loads(sys.stdin.read())))' \
          <<<"$j" >>"$f" 2>/dev/null || echo '{"status": "no output"}' >>"$f"
      done
    done
  done
done
done
printf '\r%-60s\r' "" >&2

python3 - "${rows[@]}" <<'PY'
import json, math, sys

def pct(v, p):
    v = sorted(v)
    if not v:
        return None
    k = (len(v) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)

def f(x, d=1):
    return "-" if x is None else f"{x:.{d}f}"

rows = [a.split(" ", 4) for a in sys.argv[1:]]
print(f"{'MACHINE':7} {'SIZE':5} {'LOAD':5} {'MODE':8} {'OK':>4}  {'NET BLACKOUT ms':>22}  {'vCPU BLACKOUT ms':>22}  "
      f"{'QEMU DT ms':>10} {'FLOOR ms':>8} {'TOTAL s':>7} {'MiB':>7}")
print(f"{'':28}  {'med / p95 / max':>22}  {'med / p95 / max':>22}  {'median':>10} {'median':>8} {'median':>7} {'median':>7}")
med_net = {}
for machine, size, load, mode, path in rows:
    runs = [json.loads(l) for l in open(path) if l.strip()]
    ok = [r for r in runs if r.get("status") == "completed"]
    def col(fn):
        out = []
        for r in ok:
            try:
                x = fn(r)
            except (KeyError, TypeError):
                x = None
            if x is not None:
                out.append(x)
        return out
    net = col(lambda r: r["downtime"]["network_blackout_ms"])
    cpu = col(lambda r: r["downtime"]["vcpu_blackout_ms"])
    qdt = col(lambda r: r["downtime"]["qemu_ms"])
    flo = col(lambda r: r["downtime"]["probe_floor_ms"])
    tot = col(lambda r: r["pipeline_ms"] / 1000)
    mib = col(lambda r: r["transferred_bytes"] / 1048576)
    med_net[(machine, size, load, mode)] = pct(net, 50)
    print(f"{machine:7} {size:5} {load:5} {mode:8} {len(ok):>2}/{len(runs):<1}  "
          f"{f(pct(net,50)):>6} /{f(pct(net,95)):>6} /{f(max(net) if net else None):>7}  "
          f"{f(pct(cpu,50)):>6} /{f(pct(cpu,95)):>6} /{f(max(cpu) if cpu else None):>7}  "
          f"{f(pct(qdt,50),0):>10} {f(pct(flo,50)):>8} {f(pct(tot,50)):>7} {f(pct(mib,50),0):>7}")
    bad = [r.get("error") or r.get("status") for r in runs if r.get("status") != "completed"]
    for b in sorted(set(bad)):
        print(f"      {bad.count(b)} x not completed: {b}")
print()
print("Where the blackouts go (medians; queued = stream the destination had yet to read when the")
print("source stopped the VM; lost = datagrams sent STOP..RESUME never answered):")
print(f"{'MACHINE':7} {'SIZE':5} {'LOAD':5} {'MODE':8} {'stream queued at STOP MiB':>25} {'switch after STOP ms':>20} "
      f"{'blackout over after RESUME ms':>29} {'TCG blocks then':>15} {'lost/sent while paused':>22}")
for machine, size, load, mode, path in rows:
    ok = [r for r in (json.loads(l) for l in open(path) if l.strip()) if r.get("status") == "completed"]
    np_ = [r.get("network_probe") or {} for r in ok]
    sw = [n["switched_after_stop_ms"] for n in np_ if n.get("switched_after_stop_ms") is not None]
    fa = [n["blackout_end_after_resume_ms"] for n in np_ if n.get("blackout_end_after_resume_ms") is not None]
    tb = [n["dest_translated_blocks"] for n in np_ if n.get("dest_translated_blocks") is not None]
    qs = [r["stream"]["queued_at_stop_bytes"] / 1048576 for r in ok
          if (r.get("stream") or {}).get("queued_at_stop_bytes") is not None]
    sent = sum(n.get("sent_while_paused") or 0 for n in np_)
    lost = sent - sum(n.get("answered_of_paused") or 0 for n in np_)
    print(f"{machine:7} {size:5} {load:5} {mode:8} {f(pct(qs,50),2):>25} {f(pct(sw,50),2):>20} {f(pct(fa,50)):>29} {f(pct(tb,50),0):>15} "
          f"{f'{lost}/{sent}':>22}")
print()
print("ratio of median network blackout, tgvm / plain QEMU (goal <= 0.5):")
for (machine, size, load, mode), v in med_net.items():
    if mode == "plain" or mode.startswith("old-"):
        continue
    base = med_net.get((machine, size, load, "plain"))
    if v is not None and base:
        print(f"  {machine:7} {size:5} {load:5} {mode:8} {v / base:.2f}  ({v:.1f} vs {base:.1f} ms)")
PY
