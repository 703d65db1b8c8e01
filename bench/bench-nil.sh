#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nil-migration benchmark: at each guest size, in one run, the same idle
# bundled guest (TCG) moved between two simulated hosts, on each machine kind
# (NIL_MACHINES, "pc microvm"), these ways:
#   tgvm handoff   tgvm migrate --mode shared (RAM on a shared device, x-ignore-shared)
#   plain QEMU     two QEMUs driven by hand over QMP, RAM in a shared file,
#                  x-ignore-shared, QEMU's default parameters, the same -machine kind
#   tgvm precopy   tgvm migrate (RAM private, all of it crosses)
# At each size the handoff and plain QEMU guests of every kind run at once and
# take turns move by move, so that a busy spell hits them alike.
# It prints vCPU blackout (QMP STOP on the source to RESUME on the
# destination) median/p95/max, QEMU's downtime and the bytes moved, then where
# a handoff's blackout goes (QEMU trace, extra runs with --breakdown).
# Usage: bench/bench-nil.sh [BUILD_DIR]; env NIL_RUNS (10), NIL_SIZES
# ("512M 2G 4G"), NIL_MACHINES ("pc microvm"), NIL_BREAKDOWN_RUNS (5), NIL_PRECOPY=0 skips precopy,
# OLD_BUILD=DIR alternates each handoff with one by DIR/tgvm ("handoff-old").
set -uo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
case "$build" in /*) ;; *) build=$here/$build ;; esac
T=$build/tgvm
RUNS=${NIL_RUNS:-10}
SIZES=${NIL_SIZES:-512M 2G 4G}
MACHINES=${NIL_MACHINES:-pc microvm}
BRUNS=${NIL_BREAKDOWN_RUNS:-5}
[ -x "$T" ] || { echo "no $T (make build)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "skip: needs root (network namespaces)"; exit 0; }
command -v qemu-system-x86_64 >/dev/null || { echo "skip: no qemu"; exit 0; }
export TGVM_STATE_DIR=$(mktemp -d /tmp/tgvm-bench-nil-XXXXXX)
export TGVM_ACCEL=tcg TGVM_NETNS_PREFIX=tgbn$$-
P=$TGVM_NETNS_PREFIX
A=bn-a B=bn-b
out=$TGVM_STATE_DIR/results.jsonl
cat >"$TGVM_STATE_DIR/inv.json" <<EOF
{"hosts": [{"name": "$A", "profile": "EPYC-Rome-v2"}, {"name": "$B", "profile": "EPYC-Milan-v1"}],
 "memdevs": [{"name": "cxl0", "capacity": "24G", "hosts": ["$A", "$B"]}]}
EOF
cleanup() {
  for v in $("$T" vm list --json 2>/dev/null | python3 -c 'import json,sys; print(" ".join(x["name"] for x in json.load(sys.stdin)))'); do
    "$T" vm stop "$v" >/dev/null 2>&1
  done
  for f in "$TGVM_STATE_DIR"/plain-*/pid; do # plain QEMUs this run started
    [ -r "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
  done
  "$T" host down >/dev/null 2>&1
  rm -rf "$TGVM_STATE_DIR" "/dev/shm/${P}memdev-cxl0" "/dev/shm/${P}plain"*
}
trap cleanup EXIT
"$T" host up --inventory "$TGVM_STATE_DIR/inv.json" >/dev/null || exit 1
hostof() { "$T" vm list --json | python3 -c "import json,sys; print([x['host'] for x in json.load(sys.stdin) if x['name']=='$1'][0])"; }
other() { [ "$(hostof "$1")" = $A ] && echo $B || echo $A; } # move each run away from where the VM is
ipof() { "$T" vm list --json | python3 -c "import json,sys; print([x['ip'] for x in json.load(sys.stdin) if x['name']=='$1'][0])"; }
wait_up() { # the guest answers its UDP echo
  for _ in $(seq 1 180); do
    ip netns exec ${P}probe python3 -c "
import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(1)
s.sendto(b'x',('$1',7777)); s.recv(16)" 2>/dev/null && return 0
    sleep 1
  done
  return 1
}
record() { # case size machine json-from-stdin
  python3 -c "
import json,sys
j=json.load(sys.stdin); d=j.get('downtime',{}); n=j.get('network_probe') or {}
print(json.dumps({'case':'$1','size':'$2','machine':'$3','status':j.get('status'),
  'vcpu_ms':d.get('vcpu_blackout_ms'),'qemu_ms':d.get('qemu_ms'),
  'net_ms':d.get('network_blackout_ms'),'floor_ms':d.get('probe_floor_ms'),
  'bytes':j.get('stream_bytes', j.get('transferred_bytes')),'breakdown':j.get('breakdown'),
  'switch_ms':n.get('switched_after_stop_ms'),'first_ms':n.get('blackout_end_after_resume_ms'),
  'tb':n.get('dest_translated_blocks'),'sent_p':n.get('sent_while_paused'),
  'ans_p':n.get('answered_of_paused')}))" >>"$out"
}

# Plain QEMU ping-pong between the hosts' namespaces, one move per "move" line
# on its stdin; it answers "ready" once the guest answers, "done" after a move.
cat >"$TGVM_STATE_DIR/plain.py" <<'PY'
import json, os, socket, subprocess, sys, time
size, machine, k, P, A, B, state, tag, out, extra = sys.argv[1:11]
k = int(k)
cache = os.environ.get("TGVM_CACHE_DIR") or os.path.expanduser("~/.cache/tgvm")
kernel, initrd = cache + "/guest/vmlinuz", cache + "/guest/initramfs.img"
hosts = json.load(open(state + "/hosts/%s.json" % A)), json.load(open(state + "/hosts/%s.json" % B))
addr = {A: hosts[0]["address"], B: hosts[1]["address"]}
shm = "/dev/shm/%splain%d" % (P, k)
os.makedirs(shm, exist_ok=True)
ram = shm + "/ram"
with open(ram, "wb") as f:
    f.truncate(int(size[:-1]) << (30 if size[-1] == "G" else 20))
tap = "tp%s%d" % (tag[-6:], k)
ip = "198.19.7.%d" % (7 + k)
mac = "52:54:00:be:ec:%02x" % (1 + k)
port = 4444 + k
ramid = "microvm.ram" if machine == "microvm" else "pc.ram"

def qmp(path):
    s = socket.socket(socket.AF_UNIX)
    for _ in range(300):
        try:
            s.connect(path); break
        except OSError:
            time.sleep(0.05)
    f = s.makefile("rw")
    f.readline()
    q = {"f": f, "events": []}
    cmd(q, "qmp_capabilities")
    return q

def cmd(q, name, **args):
    q["f"].write(json.dumps({"execute": name, "arguments": args}) + "\n"); q["f"].flush()
    while True:
        m = json.loads(q["f"].readline())
        if "event" in m:
            q["events"].append(m); continue
        return m

def wait_event(q, name, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        for e in q["events"]:
            if e["event"] == name:
                return e
        m = json.loads(q["f"].readline())
        if "event" in m:
            q["events"].append(m)
    raise SystemExit("no %s event" % name)

def start(host, n, incoming):
    d = "%s/plain-%d-%d" % (state, k, n)
    os.makedirs(d, exist_ok=True)
    ns = P + host
    subprocess.run(["ip", "-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "-n", ns, "link", "set", tap, "master", "br0", "up"], check=True)
    argv = ["ip", "netns", "exec", ns, "qemu-system-x86_64", "-name", "bnplain%s,debug-threads=on" % tag,
            "-machine", "%s,memory-backend=%s" % (machine, ramid), "-object",
            "memory-backend-file,id=%s,mem-path=%s,size=%s,share=on" % (ramid, ram, size),
            "-accel", "tcg", "-cpu", "qemu64", "-m", size, "-nodefaults", "-no-user-config",
            "-display", "none", "-qmp", "unix:%s/qmp.sock,server=on,wait=off" % d,
            "-serial", "file:%s/serial.log" % d, "-netdev", "tap,id=net0,ifname=%s,script=no,downscript=no" % tap,
            "-device", ("virtio-net-device,netdev=net0,mac=%s" if machine == "microvm" else
                        "virtio-net-pci,netdev=net0,mac=%s,romfile=") % mac,
            "-kernel", kernel, "-initrd", initrd, "-append",
            "console=ttyS0 panic=-1 quiet cryptomgr.notests no_timer_check tgvm.workload=udp-responder tgvm.ip=%s/15 %s" % (ip, extra),
            "-pidfile", d + "/pid", "-daemonize"]
    if incoming:
        argv += ["-incoming", "tcp:%s:%d" % (addr[host], port)]
    subprocess.run(argv, check=True)
    return d, qmp(d + "/qmp.sock"), ns

def stop(d, ns):
    try:
        pid = int(open(d + "/pid").read())
        os.kill(pid, 9)
        for _ in range(100):
            if not os.path.exists("/proc/%d" % pid): break
            time.sleep(0.02)
        os.unlink(d + "/pid")
    except (OSError, ValueError):
        pass
    subprocess.run(["ip", "-n", ns, "link", "del", tap], stderr=subprocess.DEVNULL)

cur_host, n = A, 0
d, q, ns = start(A, n, False)
# the guest boots and its responder answers (it runs in the probe's L2 segment)
for _ in range(180):
    r = subprocess.run(["ip", "netns", "exec", P + "probe", "python3", "-c",
        "import socket; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(1); s.sendto(b'x',('%s',7777)); s.recv(16)" % ip],
        stderr=subprocess.DEVNULL)
    if r.returncode == 0: break
    time.sleep(1)
print("ready", flush=True)
results = open(out, "a")
while sys.stdin.readline().strip() == "move":
    to = B if cur_host == A else A
    n += 1
    d2, q2, ns2 = start(to, n, True)
    for qq in (q, q2):
        cmd(qq, "migrate-set-capabilities", capabilities=[{"capability": "x-ignore-shared", "state": True}])
    r = cmd(q, "migrate", uri="tcp:%s:%d" % (addr[to], port))
    stop_e = wait_event(q, "STOP")
    res_e = wait_event(q2, "RESUME")
    while True:
        st = cmd(q, "query-migrate")["return"]
        if st.get("status") in ("completed", "failed"): break
        time.sleep(0.01)
    ts = lambda e: e["timestamp"]["seconds"] * 1e6 + e["timestamp"]["microseconds"]
    tt, setup = st.get("total-time", 0), st.get("setup-time", 0)
    mbps = st.get("ram", {}).get("mbps", 0)
    print(json.dumps({"case": "plain", "size": size, "machine": machine, "status": st.get("status"),
        "vcpu_ms": (ts(res_e) - ts(stop_e)) / 1000.0, "qemu_ms": st.get("downtime"),
        "bytes": int(mbps * (tt - setup) * 125 + 0.5) if tt > setup else None, "breakdown": None}),
        file=results, flush=True)
    stop(d, ns)
    d, q, ns, cur_host = d2, q2, ns2, to
    print("done", flush=True)
stop(d, ns)
os.unlink(ram)
PY

# The TSC rate tgvm gives a microvm kernel under TCG (vm_tsc_early_arg()), for
# plain QEMU's microvm guests too: without it they stall in early boot.
tsc_arg() { # VM
  python3 -c "import json,re,sys; m=re.search(r'tsc_early_khz=[0-9]+', json.load(open('$TGVM_STATE_DIR/vms/$1/config.json')).get('append','')); print(m.group(0) if m else '')"
}

for size in $SIZES; do
  echo "-- $size: booting $MACHINES (tgvm and plain QEMU)" >&2
  k=0 vms=() plains=() plain_pid=() plain_w=() plain_r=()
  for m in $MACHINES; do
    vm=bn$m
    "$T" vm start $vm --host $A --mem "$size" --memdev cxl0 --machine $m >/dev/null ||
      { echo "cannot start $size $m on the device"; continue; }
    extra=$([ $m = microvm ] && tsc_arg $vm)
    # plain QEMU of the same kind, driven through two FIFOs
    rm -f "$TGVM_STATE_DIR/plain-in$k" "$TGVM_STATE_DIR/plain-out$k"
    mkfifo "$TGVM_STATE_DIR/plain-in$k" "$TGVM_STATE_DIR/plain-out$k"
    python3 "$TGVM_STATE_DIR/plain.py" $size $m $k $P $A $B "$TGVM_STATE_DIR" $$ "$out" "$extra" \
      <"$TGVM_STATE_DIR/plain-in$k" >"$TGVM_STATE_DIR/plain-out$k" &
    plain_pid[$k]=$!
    exec {w}>"$TGVM_STATE_DIR/plain-in$k" {r}<"$TGVM_STATE_DIR/plain-out$k"
    plain_w[$k]=$w plain_r[$k]=$r
    vms+=("$vm:$m") plains+=("$k:$m")
    k=$((k + 1))
  done
  for v in "${vms[@]}"; do wait_up "$(ipof ${v%%:*})" || echo "warning: $size ${v#*:} guest did not answer" >&2; done
  for p in "${plains[@]}"; do
    line=""
    read -r line <&"${plain_r[${p%%:*}]}"
    [ "$line" = ready ] || echo "warning: plain QEMU ${p#*:} $size: '$line'" >&2
  done
  echo "-- $size: $RUNS rounds" >&2
  for i in $(seq 1 "$RUNS"); do
    for v in "${vms[@]}"; do
      "$T" migrate ${v%%:*} --to "$(other ${v%%:*})" --mode shared --json | record handoff "$size" ${v#*:}
    done
    for p in "${plains[@]}"; do
      echo move >&"${plain_w[${p%%:*}]}"
      read -r line <&"${plain_r[${p%%:*}]}"
    done
  done
  for i in $(seq 1 "$BRUNS"); do
    for v in "${vms[@]}"; do
      "$T" migrate ${v%%:*} --to "$(other ${v%%:*})" --mode shared --breakdown --json | record handoff-breakdown "$size" ${v#*:}
    done
  done
  for p in "${plains[@]}"; do
    kk=${p%%:*}
    echo quit >&"${plain_w[$kk]}"
    wait "${plain_pid[$kk]}"
    w=${plain_w[$kk]} r=${plain_r[$kk]}
    exec {w}>&- {r}<&-
  done
  for v in "${vms[@]}"; do "$T" vm stop ${v%%:*} >/dev/null; done
  if [ "${NIL_PRECOPY:-1}" = 1 ]; then
    for m in $MACHINES; do
      echo "-- $size: tgvm precopy ($m)" >&2
      vm=bnprivate
      "$T" vm start $vm --host $A --mem "$size" --machine $m >/dev/null
      wait_up "$(ipof $vm)" || echo "warning: $size guest did not answer" >&2
      for i in $(seq 1 "$RUNS"); do
        "$T" migrate $vm --to "$(other $vm)" --json | record precopy "$size" $m
      done
      "$T" vm stop $vm >/dev/null
    done
  fi
done

python3 - "$out" "$RUNS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def pct(v, p):
    v = sorted(v); k = (len(v) - 1) * p / 100; f = int(k)
    return v[f] if f + 1 >= len(v) else v[f] + (v[f + 1] - v[f]) * (k - f)
sizes, machines = [], []
for r in rows:
    if r["size"] not in sizes: sizes.append(r["size"])
    r.setdefault("machine", "q35")
    if r["machine"] not in machines: machines.append(r["machine"])
names = {"handoff": "tgvm handoff (shared)", "handoff-old": "tgvm handoff, OLD_BUILD",
         "plain": "plain QEMU x-ignore-shared", "precopy": "tgvm precopy"}
print("%-6s %-8s %-28s %5s %8s %8s %8s %8s %8s %8s %7s %10s %12s" % ("SIZE", "MACHINE", "CASE", "RUNS", "vCPU med", "p95", "max",
      "net med", "p95", "max", "floor", "QEMU med", "MOVED med"))
for s in sizes:
  for mk in machines:
    for c in ("handoff", "handoff-old", "plain", "precopy"):
        rs = [r for r in rows if r["size"] == s and r["machine"] == mk and r["case"] == c and r["status"] == "completed" and r["vcpu_ms"] is not None]
        fails = len([r for r in rows if r["size"] == s and r["machine"] == mk and r["case"] == c]) - len(rs)
        if not rs: continue
        v = [r["vcpu_ms"] for r in rs]; q = [r["qemu_ms"] for r in rs if r["qemu_ms"] is not None]
        b = [r["bytes"] for r in rs if r["bytes"] is not None]
        moved = statistics.median(b) / 1048576 if b else float("nan")
        n = [r["net_ms"] for r in rs if r.get("net_ms") is not None]
        fl = [r["floor_ms"] for r in rs if r.get("floor_ms") is not None]
        net = ("%8.1f %8.1f %8.1f" % (statistics.median(n), pct(n, 95), max(n))) if n else "%8s %8s %8s" % ("-", "-", "-")
        print("%-6s %-8s %-28s %5d %8.2f %8.2f %8.2f %s %7s %10s %10.1f KiB%s" % (s, mk, names[c], len(rs), statistics.median(v),
              pct(v, 95), max(v), net, "%.1f" % statistics.median(fl) if fl else "-",
              "%.0f ms" % statistics.median(q) if q else "-", moved * 1024,
              "  (%d failed)" % fails if fails else ""))
print("\nvCPU blackout in ms (QMP STOP on the source -> RESUME on the destination); net: the longest")
print("silence the UDP probe (a third namespace, every 0.2 ms) saw from the guest's responder, with")
print("its no-migration floor; plain QEMU runs without tgvm's probe and network switch (net: -).")
print("MOVED: the whole migration stream (RAM, device state, headers): QEMU's bytes sent before and during the downtime.")
print("\nWhere the network blackout goes (medians; lost = datagrams sent STOP..RESUME never answered):")
print("%-6s %-8s %-28s %12s %20s %12s %14s" % ("SIZE", "MACHINE", "CASE", "switch ms", "over after RESUME", "TCG blocks", "lost/sent"))
for s in sizes:
  for mk in machines:
    for c in ("handoff", "precopy"):
        rs = [r for r in rows if r["size"] == s and r["machine"] == mk and r["case"] == c and r["status"] == "completed"]
        if not rs: continue
        med = lambda k: statistics.median([r[k] for r in rs if r.get(k) is not None] or [float("nan")])
        sent = sum(r.get("sent_p") or 0 for r in rs); lost = sent - sum(r.get("ans_p") or 0 for r in rs)
        print("%-6s %-8s %-28s %12.2f %17.1f ms %12.0f %14s" % (s, mk, names[c], med("switch_ms"), med("first_ms"),
              med("tb"), "%d/%d" % (lost, sent)))
print("over after RESUME: from the destination's RESUME to the end of the network blackout; TCG blocks: code blocks the")
print("destination's new QEMU had translated in its first half second (an empty code cache; KVM translates nothing).")
keys = ["stop_to_save_ms", "device_save_ms", "transfer_and_load_ms", "post_load_to_resume_ms",
        "resume_to_vcpu_start_ms", "announce_after_resume_ms", "load_ms"]
print("\nWhere a handoff's vCPU blackout goes (medians over the --breakdown runs, ms; the first four add up to it):")
print("%-6s %-8s %5s " % ("SIZE", "MACHINE", "RUNS") + " ".join("%s" % k.replace("_ms", "") for k in keys) + "  blackout")
for s in sizes:
  for mk in machines:
    rs = [r for r in rows if r["size"] == s and r["machine"] == mk and r["case"] == "handoff-breakdown" and r["breakdown"]]
    if not rs: continue
    cells = []
    for k in keys:
        v = [r["breakdown"][k] for r in rs if r["breakdown"].get(k) is not None]
        cells.append("%*.3f" % (len(k) - 3, statistics.median(v)) if v else "%*s" % (len(k) - 3, "-"))
    print("%-6s %-8s %5d " % (s, mk, len(rs)) + " ".join(cells) + "  %8.2f" % statistics.median([r["vcpu_ms"] for r in rs]))
    slow = {}
    for r in rs:
        for e in r["breakdown"].get("slowest_loads", []):
            slow.setdefault(e["section"], []).append(e["ms"])
    top = sorted(slow.items(), key=lambda kv: -statistics.median(kv[1]))[:3]
    print("        slowest device loads: " + ", ".join("%s %.2f ms" % (k, statistics.median(v)) for k, v in top))
    secs = {}
    for r in rs:
        for e in r["breakdown"].get("sections", []):
            secs.setdefault(e["section"], []).append(e)
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    print("        %d sections; save+load medians (ms): " % len(secs) + ", ".join(
        "%s %.3f+%.3f" % (k.split("/")[-1], med([e["save_ms"] for e in v if e["save_ms"] is not None]),
                          med([e["load_ms"] for e in v if e["load_ms"] is not None])) for k, v in secs.items()))
PY
