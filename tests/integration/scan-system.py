#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The judge of tgvm scan on this machine's own software.

Scans ELF files under /usr (all of them, or a deterministic stratified sample
within a byte budget), and for every file whose *required* set goes beyond the
x86-64 baseline runs it under qemu-x86_64 with each such feature removed:

  programs   with --version, else --help, which must exit 0 (stdin empty, no network, as nobody
             when root, in a PID namespace so nothing outlives the run);
  libraries  through dlopen-loader.c, which binds every symbol and runs the
             library's ifunc resolvers and constructors. Exported functions
             are never called (no call is safe without knowing its
             arguments), so a library is judged only on the features the scan
             says its load reaches; features required only through its API
             are counted as "not judged".

A run under `-cpu max,-F` that ends exactly like the reference runs under
`-cpu max` (exit status and output; the reference is run twice and must agree
with itself) contradicts the scan's claim that F is required. A feature the
installed QEMU cannot present at all (AVX-512 in QEMU 7.2's TCG, or a name it
does not know) is judged by the reference run alone: it already lacks F.

Prints the counts; exits 1 when there is a contradiction, 0 otherwise.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

# x86-64 psABI v1 and what every x86-64 Linux machine has (the scan's
# "baseline x86-64 feature", tgvm_linux_baseline()).
BASELINE = set(
    "fpu tsc cx8 cmov mmx fxsr sse sse2 lm syscall de pse msr pae mce apic sep mtrr "
    "pge mca pat pse36 clflush nx hypervisor".split())
ROOTS = ["/usr/bin", "/usr/sbin", "/usr/libexec", "/usr/lib"]
LOAD_REASONS = ("from an ifunc resolver", "from the entry point or a constructor")


def is_x86_64_elf(path):
    try:
        with open(path, "rb") as f:
            h = f.read(20)
    except OSError:
        return False
    return len(h) == 20 and h[:4] == b"\x7fELF" and h[4] == 2 and h[18:20] == b"\x3e\x00"


def candidates(roots):
    """Regular x86-64 ELF files under each root, per root, sorted, one name per inode."""
    seen = set()
    out = {}
    for root in roots:
        files = []
        for d, dirs, names in os.walk(root):
            dirs.sort()
            for n in sorted(names):
                p = os.path.join(d, n)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if not os.path.isfile(p) or os.path.islink(p) or st.st_size < 64:
                    continue
                key = (st.st_dev, st.st_ino)
                if key in seen or not is_x86_64_elf(p):
                    continue
                seen.add(key)
                files.append((p, st.st_size))
        out[root] = files
    return out


def sample(strata, budget):
    """Every k-th file of each root, the smallest k that keeps the root within
    its share of @budget bytes (shares by the roots' total sizes)."""
    total = sum(s for files in strata.values() for _, s in files) or 1
    picked = []
    for files in strata.values():
        share = budget * sum(s for _, s in files) / total
        for k in range(1, len(files) + 1):
            sel = files[::k]
            if sum(s for _, s in sel) <= share:
                picked += [p for p, _ in sel]
                break
    return picked


class Runner:
    def __init__(self, qemu, tmp, timeout):
        self.qemu, self.tmp, self.timeout = qemu, tmp, timeout
        self.prefix = []
        if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("setpriv"):
            self.prefix = ["unshare", "--pid", "--net", "--fork", "--kill-child", "setpriv",
                           "--reuid=65534", "--regid=65534", "--clear-groups"]
        self.cpu_ok = {}

    def cpu_known(self, cpu):
        """Does this qemu-x86_64 accept @cpu (a name it may not know)?"""
        if cpu not in self.cpu_ok:
            r = subprocess.run([self.qemu, "-cpu", cpu, "/bin/true"], capture_output=True)
            self.cpu_ok[cpu] = r.returncode == 0
        return self.cpu_ok[cpu]

    def run(self, cpu, argv):
        env = {"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "HOME": self.tmp,
               "TERM": "dumb"}
        try:
            r = subprocess.run(["timeout", "-k", "2", str(self.timeout)] + self.prefix +
                               [self.qemu, "-cpu", cpu] + argv,
                               stdin=subprocess.DEVNULL, capture_output=True, cwd=self.tmp,
                               env=env)
        except OSError as e:
            return ("error", str(e), "")
        return (r.returncode, r.stdout[:65536], r.stderr[:4096].replace(
            os.fsencode(argv[0]), b"PROG"))


def ended_well(res):
    """A reference run must succeed: a usage error says little about the code."""
    return res[0] == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tgvm", required=True)
    ap.add_argument("--loader", required=True, help="built dlopen-loader")
    ap.add_argument("--qemu", default="qemu-x86_64")
    ap.add_argument("--root", action="append", help="directories to scan (default /usr/...)")
    ap.add_argument("--budget-mb", type=float, default=0, help="0: every file")
    ap.add_argument("--max-judged", type=int, default=0, help="0: no cap")
    ap.add_argument("--timeout", type=int, default=20)
    ap.add_argument("--keep", help="write the scan report here")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()

    roots = [r for r in (a.root or ROOTS) if os.path.isdir(r)]
    strata = candidates(roots)
    # the whole run names the roots (one scan of each tree); a sample names files
    inputs = sample(strata, int(a.budget_mb * 1e6)) if a.budget_mb > 0 else roots
    tmp = tempfile.mkdtemp(prefix="tgvm-scan-system.")
    os.chmod(tmp, 0o777)
    try:
        rep = a.keep or os.path.join(tmp, "scan.json")
        # one invocation, the sampled files as inputs
        with open(rep, "w") as out:
            r = subprocess.run([a.tgvm, "scan", "--json"] + inputs, stdout=out,
                               stderr=subprocess.PIPE)
        if r.returncode not in (0, 1):
            sys.stderr.write(r.stderr.decode(errors="replace"))
            print(f"scan failed with exit {r.returncode}")
            return 3
        d = json.load(open(rep))
        absof = {}  # path in the report -> absolute paths (evidence names no input)
        for f in d["files"]:  # paths inside a directory input are relative to it
            rel = f["path"]
            if os.path.isdir(f["input"]):
                f["path"] = os.path.join(f["input"], rel.lstrip("/"))
            absof.setdefault(rel, set()).add(f["path"])
        uniq = {}
        for f in d["files"]:  # a library linked by several inputs is judged once
            uniq.setdefault(f["path"], f)
        d["files"] = list(uniq.values())

        load_feats = {}  # library path -> features its load reaches
        for feat, evs in d["evidence"].items():
            for e in evs:
                if e["class"] == "required" and e["detail"].endswith(LOAD_REASONS):
                    for p in absof.get(e["file"], ()):
                        load_feats.setdefault(p, set()).add(feat)

        runner = Runner(a.qemu, tmp, a.timeout)
        beyond = [f for f in d["files"] if set(f["required"]) - BASELINE]
        counts = {"files": len(d["files"]), "beyond": len(beyond), "judged": 0,
                  "contradictions": 0, "confirmed": 0, "not_judged": 0}
        per = {}  # feature -> [required, contradicted, confirmed, not judged]
        lines = []
        for f in beyond:
            if a.max_judged and counts["judged"] >= a.max_judged:
                counts["not_judged"] += 1
                continue
            path = f["path"]
            feats = sorted(set(f["required"]) - BASELINE)
            for x in feats:
                per.setdefault(x, [0, 0, 0, 0])[0] += 1
            if f["kind"] == "library":
                argvs = [[a.loader, path]]
                judge = [x for x in feats if x in load_feats.get(path, ())]
            else:
                argvs = [[path, "--version"], [path, "--help"]]
                judge = feats
            for x in feats:
                if x not in judge:
                    per[x][3] += 1
            if not judge:
                counts["not_judged"] += 1
                lines.append(f"not judged  {path}: {','.join(feats)} only through its API")
                continue
            ref = None
            for argv in argvs:
                r1 = runner.run("max", argv)
                if ended_well(r1) and runner.run("max", argv) == r1:
                    ref = (argv, r1)
                    break
            if not ref:
                counts["not_judged"] += 1
                for x in judge:
                    per[x][3] += 1
                lines.append(f"not judged  {path}: no run that succeeds the same way twice "
                             f"(exit {r1[0]})")
                continue
            counts["judged"] += 1
            for x in judge:
                cpu = f"max,-{x}"
                res = runner.run(cpu, ref[0]) if runner.cpu_known(cpu) else ref[1]
                how = "" if runner.cpu_known(cpu) else " (QEMU cannot present it)"
                if res == ref[1]:
                    counts["contradictions"] += 1
                    per[x][1] += 1
                    lines.append(f"CONTRADICTION {path}: runs without {x}{how}: "
                                 f"{' '.join(ref[0][1:]) or '(load)'} exit {res[0]}")
                else:
                    counts["confirmed"] += 1
                    per[x][2] += 1
                    lines.append(f"confirmed   {path}: without {x} exit {res[0]} "
                                 f"(reference {ref[1][0]})")
        for ln in lines:
            if a.verbose or ln.startswith("CONTRADICTION"):
                print(ln)
        print(f"files scanned: {counts['files']} (of {sum(len(v) for v in strata.values())} "
              f"ELF files under {' '.join(roots)}), code {d['counts']['code_bytes']} bytes, "
              f"scan {d['counts']['elapsed_ms']} ms")
        print(f"required beyond baseline: {counts['beyond']} files; judged {counts['judged']}, "
              f"not judged {counts['not_judged']}")
        print(f"contradictions: {counts['contradictions']}  confirmed: {counts['confirmed']}")
        print("feature            files  contradicted  confirmed  not-judged")
        for x in sorted(per):
            p = per[x]
            print(f"{x:<18} {p[0]:>5}  {p[1]:>12}  {p[2]:>9}  {p[3]:>10}")
        return 1 if counts["contradictions"] else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
