#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A scripted stand-in for qemu-system-x86_64, for the phase-level tests.

Started by tgvm (vm_spawn) with QEMU's command line, it daemonizes as QEMU
does (-daemonize, -pidfile), serves QMP on the -chardev socket of the monitor
and plays a migration without any guest: the source, on 'migrate', goes
setup -> active (query-migrate samples with ram figures) -> STOP -> completed;
the destination (-incoming) resumes once the source has completed. Postcopy:
migrate-start-postcopy stops the source (postcopy-active), the destination
resumes at once, the source completes a moment later (or, its destination
gone, waits in postcopy-paused). The two
processes meet in $FAKE_QEMU_DIR:

  stage       the migration's stage, written by the source (active, stopped,
              postcopy, completed, cancelled, failed) and the destination
              (postcopy-running, resumed)
  scenario    faults, one a line: ROLE STAGE TRIGGER ACTION (each hits once;
              written anew, the file's faults hit again)
                ROLE     src | dst
                STAGE    prepare (no migration yet) | active | stopped |
                         postcopy | postcopy-running | completed |
                         resumed: the stage the fault waits for
                TRIGGER  a QMP command name: the fault hits that command
                         (once); '-': it hits 100 ms after the stage is
                         reached (nothing of the process moves on before)
                ACTION   error (a QMP error reply; as a stage fault: the
                         destination never resumes and fails every command),
                         close (the monitor connections close; the monitor
                         listens on and QEMU goes on, as QEMU does), hang (no
                         reply, ever; as a stage fault: never resumes and
                         never answers), exit (the process dies at once)
  transcript  every command and event each fake receives or sends, its run
              states and the faults it injected, one line each:
              "MS ROLE PID KIND DETAIL" (MS: wall clock, milliseconds)

Anything else (--version, the CPU model queries over -qmp stdio) is handed to
the real QEMU ($FAKE_QEMU_REAL or qemu-system-x86_64 on PATH).
"""
import json
import os
import selectors
import shutil
import signal
import socket
import sys
import time

T0 = time.monotonic()
ACTIVE_MS = 400      # precopy before STOP (at least 2 samples too)
LAST_COPY_MS = 200   # STOP to completed (at least 1 sample too)
STAGE_FAULT_MS = 100  # a stage fault hits this long after the stage began: tgvm
                      # is past the phase that led there, whatever the load
RAM_TOTAL = 128 << 20


def real_qemu():
    me = os.path.realpath(sys.argv[0])
    cand = os.environ.get("FAKE_QEMU_REAL") or shutil.which("qemu-system-x86_64")
    if not cand or os.path.realpath(cand) == me:
        sys.stderr.write("fake-qemu: no real QEMU to run this: %s\n" % " ".join(sys.argv[1:]))
        sys.exit(1)
    return cand


def opt_value(args, name):
    for i, a in enumerate(args[:-1]):
        if a == name:
            return args[i + 1]
    return None


def chardev_paths(args):
    """id -> (path, logfile) of each -chardev socket."""
    out = {}
    for i, a in enumerate(args[:-1]):
        if a != "-chardev":
            continue
        parts = args[i + 1].split(",")
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if parts[0] == "socket" and "path" in kv:
            out[kv.get("id", "")] = (kv["path"], kv.get("logfile"))
    return out


class Fake:
    def __init__(self, args):
        self.args = args
        self.dir = os.environ.get("FAKE_QEMU_DIR")
        if not self.dir:
            raise SystemExit("fake-qemu: FAKE_QEMU_DIR is not set")
        self.role = "dst" if "-incoming" in args else "src"
        self.name = (opt_value(args, "-name") or "?").split(",")[0]
        devs = chardev_paths(args)
        self.qmp_path = devs.get("qmp", (None, None))[0]
        self.console = devs.get("ser0")
        self.pidfile = opt_value(args, "-pidfile")
        if not self.qmp_path:
            raise SystemExit("fake-qemu: no -chardev socket,id=qmp")
        self.sel = selectors.DefaultSelector()
        self.clients = {}     # socket -> {"buf": bytes, "ready": bool, "fds": [...]}
        self.listener = None
        self.runstate = "inmigrate" if self.role == "dst" else "running"
        self.mig = None       # source: its migration's status; destination: incoming status
        self.mig_since = 0.0
        self.samples = 0      # query-migrate in the current status
        self.transferred = 0
        self.passes = 0
        self.fired = set()    # faults already injected: (scenario mtime, line)
        self.stuck = None     # destination stage fault: "error" or "hang"
        self.stage_seen = (None, 0.0)  # the stage and when this process first saw it

    # ---- the shared directory ----
    def log(self, kind, detail=""):
        line = "%.3f %s %d %s %s\n" % (time.time() * 1000, self.role, os.getpid(), kind,
                                       detail)
        fd = os.open(os.path.join(self.dir, "transcript"), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                     0o600)
        os.write(fd, line.encode())
        os.close(fd)

    def stage(self):
        try:
            with open(os.path.join(self.dir, "stage")) as f:
                return f.read().strip() or "prepare"
        except OSError:
            return "prepare"

    def set_stage(self, s):
        tmp = os.path.join(self.dir, "stage.%d" % os.getpid())
        with open(tmp, "w") as f:
            f.write(s + "\n")
        os.rename(tmp, os.path.join(self.dir, "stage"))
        self.log("stage", s)

    def faults(self):
        """The faults of the scenario not injected yet: (key, stage, trigger, action).
        A scenario written anew (another mtime) fires again."""
        path = os.path.join(self.dir, "scenario")
        try:
            with open(path) as f:
                lines = f.read().splitlines()
                version = os.fstat(f.fileno()).st_mtime_ns
        except OSError:
            return []
        out = []
        for n, line in enumerate(lines):
            w = line.split("#", 1)[0].split()
            if len(w) == 4 and w[0] == self.role and (version, n) not in self.fired:
                out.append(((version, n), w[1], w[2], w[3]))
        return out

    def fault_for(self, trigger):
        st = self.stage()
        for n, stage, trig, action in self.faults():
            if stage == st and trig == trigger:
                self.fired.add(n)
                self.log("fault", "%s %s %s" % (stage, trig, action))
                return action
        return None

    # ---- the process ----
    def listen(self):
        for path in (self.qmp_path, self.console[0] if self.console else None):
            if path and os.path.exists(path):
                os.unlink(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.qmp_path)
        self.listener.listen(8)
        self.sel.register(self.listener, selectors.EVENT_READ, "qmp")
        if self.console:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.bind(self.console[0])
            c.listen(2)
            self.sel.register(c, selectors.EVENT_READ, "console")
            if self.console[1]:
                open(self.console[1], "a").close()

    def daemonize(self):
        r, w = os.pipe()
        if os.fork() > 0:
            os.close(w)
            ok = os.read(r, 1)
            os._exit(0 if ok == b"1" else 1)
        os.close(r)
        os.setsid()
        try:
            self.listen()
            if self.pidfile:
                with open(self.pidfile, "w") as f:
                    f.write("%d\n" % os.getpid())
        except OSError as e:
            sys.stderr.write("fake-qemu: %s\n" % e)
            os._exit(1)
        self.log("start", " ".join(self.args))
        if self.role == "dst":
            with open(os.path.join(self.dir, "dst-pid"), "w") as f:
                f.write("%d\n" % os.getpid())
        os.write(w, b"1")
        os.close(w)
        fd = os.open(os.devnull, os.O_RDWR)
        os.dup2(fd, 0)

    def die(self, why, code=0):
        self.log("exit", why)
        if code == 0 and self.pidfile:
            try:
                os.unlink(self.pidfile)  # QEMU removes its pid file on a clean exit
            except OSError:
                pass
        os._exit(code)

    # ---- QMP ----
    def send(self, sock, obj):
        try:
            sock.sendall((json.dumps(obj) + "\r\n").encode())
        except OSError:
            self.drop(sock)

    def drop(self, sock):
        if sock in self.clients:
            del self.clients[sock]
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()

    def event(self, name, data=None):
        now = time.time()
        ev = {"event": name, "timestamp": {"seconds": int(now),
                                           "microseconds": int((now % 1) * 1e6)}}
        if data is not None:
            ev["data"] = data
        self.log("emit", name + ("" if data is None else " " + json.dumps(data, sort_keys=True)))
        for s, c in list(self.clients.items()):
            if c["ready"]:
                self.send(s, ev)

    def set_run(self, state):
        if state != self.runstate:
            self.log("run", "%s -> %s" % (self.runstate, state))
            was_running = self.runstate == "running"
            self.runstate = state
            if state == "running" and not was_running:
                self.event("RESUME")
            elif was_running and state != "running":
                self.event("STOP")

    def accept(self, lsock, what):
        s, _ = lsock.accept()
        if what == "console":
            self.sel.register(s, selectors.EVENT_READ, "console-client")
            return
        self.clients[s] = {"buf": b"", "ready": False}
        self.sel.register(s, selectors.EVENT_READ, "client")
        self.send(s, {"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10},
                                          "package": "tgvm fake-qemu"},
                              "capabilities": ["oob"]}})

    def readable(self, s):
        try:
            data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
        except OSError:
            data, anc = b"", []
        for level, typ, raw in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                n = len(raw) // 4
                for fd in (int.from_bytes(raw[i * 4:i * 4 + 4], sys.byteorder)
                           for i in range(n)):
                    os.close(fd)  # accept the fd and let it go: no stream to carry
                    self.log("fd", "received and closed")
        if not data:
            self.drop(s)
            return
        c = self.clients[s]
        c["buf"] += data
        while b"\n" in c["buf"] and s in self.clients:
            line, c["buf"] = c["buf"].split(b"\n", 1)
            if line.strip():
                self.command(s, line)

    def command(self, s, line):
        try:
            req = json.loads(line)
        except ValueError:
            self.send(s, {"error": {"class": "GenericError", "desc": "JSON parse error"}})
            return
        cmd, args, rid = req.get("execute"), req.get("arguments") or {}, req.get("id")
        self.log("cmd", cmd + ("" if not args else " " + json.dumps(args, sort_keys=True)))
        if self.stuck == "hang":
            return
        if self.stuck == "error":
            self.send(s, {"error": {"class": "GenericError", "desc": "fake-qemu: stuck"},
                          "id": rid})
            return
        action = self.fault_for(cmd)
        if action == "exit":
            self.die("fault: exit at %s" % cmd, code=9)
        if action == "close":
            self.log("close", "monitor connection")
            self.drop(s)
            return
        if action == "hang":
            return
        if action == "error":
            self.send(s, {"error": {"class": "GenericError",
                                    "desc": "fake-qemu: injected error in %s" % cmd},
                          "id": rid})
            return
        try:
            ret = self.run(s, cmd, args)
        except ValueError as e:
            self.send(s, {"error": {"class": "GenericError", "desc": str(e)}, "id": rid})
            return
        self.send(s, {"return": ret, "id": rid})
        if cmd == "quit":
            self.event("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"})
            self.die("quit")

    def run(self, s, cmd, args):
        if cmd == "qmp_capabilities":
            self.clients[s]["ready"] = True
            return {}
        if cmd == "query-status":
            return {"status": self.runstate, "running": self.runstate == "running",
                    "singlestep": False}
        if cmd == "stop":
            self.set_run("paused")
            return {}
        if cmd == "cont":
            if self.role == "dst" and self.mig not in ("completed", None):
                raise ValueError("Migration is not finished")
            self.set_run("running")
            return {}
        if cmd == "quit":
            return {}
        if cmd in ("migrate-set-capabilities", "migrate-set-parameters", "getfd", "closefd",
                   "trace-event-set-state", "migrate-pause", "migrate-recover"):
            return {}
        if cmd == "migrate-incoming":
            if self.role != "dst":
                raise ValueError("not started with -incoming")
            self.mig = "active"
            return {}
        if cmd == "migrate":
            if self.role != "src" or self.mig in ("setup", "active"):
                raise ValueError("There's a migration process in progress")
            self.start_migration()
            return {}
        if cmd == "migrate_cancel":
            self.cancel()
            return {}
        if cmd == "migrate-start-postcopy":
            if self.role != "src" or self.mig != "active":
                raise ValueError("Postcopy must be started after migration has been started")
            self.set_run("finish-migrate")
            self.set_mig("postcopy-active")
            self.set_stage("postcopy")
            return {}
        if cmd == "query-migrate":
            return self.query_migrate()
        if cmd == "x-query-jit":
            return {"human-readable-text": "Translation buffer state:\nTB count            100\n"}
        if cmd == "human-monitor-command":
            return ""
        raise ValueError("The command %s has not been found" % cmd)

    # ---- the migration ----
    def set_mig(self, status):
        self.mig, self.mig_since, self.samples = status, time.monotonic(), 0
        self.event("MIGRATION", {"status": status})

    def start_migration(self):
        self.transferred = 0
        self.passes = 1
        self.set_mig("setup")
        self.set_stage("active")
        self.set_mig("active")

    def cancel(self):
        if self.role != "src" or self.mig not in ("setup", "active"):
            return
        self.set_mig("cancelling")
        self.set_mig("cancelled")
        self.set_stage("cancelled")
        if self.runstate == "finish-migrate":
            self.set_run("running")  # QEMU resumes a VM it had stopped for the migration

    def query_migrate(self):
        if self.mig is None:
            return {}
        self.samples += 1
        if self.role == "dst":
            return {"status": self.mig}
        if self.mig in ("active", "postcopy-active"):
            self.transferred += 8 << 20
            self.passes += 1
        out = {"status": self.mig, "total-time": int((time.monotonic() - T0) * 1000),
               "ram": {"transferred": self.transferred, "total": RAM_TOTAL,
                       "remaining": max(RAM_TOTAL - self.transferred, 4096)
                       if self.mig in ("setup", "active", "postcopy-active") else 0,
                       "duplicate": 0, "normal": self.transferred // 4096,
                       "dirty-pages-rate": 10, "page-size": 4096,
                       "dirty-sync-count": self.passes, "mbps": 800.0}}
        if self.mig == "completed":
            out["downtime"] = 12
        return out

    def dst_alive(self):
        try:
            with open(os.path.join(self.dir, "dst-pid")) as f:
                pid = int(f.read())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        try:  # a zombie is gone too
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def tick(self):
        now = time.monotonic()
        age_ms = (now - self.mig_since) * 1000
        # Without a monitor connection QEMU goes on by the clock alone.
        watched = any(c["ready"] for c in self.clients.values())
        if self.role == "src" and self.mig in ("setup", "active") and not self.dst_alive():
            # The stream broke: QEMU fails the migration and runs the VM again.
            self.set_mig("failed")
            self.set_stage("failed")
            self.set_run("running")
        if self.role == "src" and self.mig == "postcopy-active" and not self.dst_alive():
            self.set_mig("postcopy-paused")  # it holds pages the destination needs
        if (self.role == "src" and self.mig == "postcopy-active" and age_ms >= ACTIVE_MS and
                (self.samples >= 2 or not watched)):
            self.set_run("postmigrate")
            self.set_mig("completed")
            self.set_stage("completed")
        if self.role == "src" and self.mig == "active":
            if self.runstate == "running" and age_ms >= ACTIVE_MS and (self.samples >= 2 or
                                                                       not watched):
                self.set_run("finish-migrate")
                self.set_stage("stopped")
                self.samples, self.mig_since = 0, now
            elif self.runstate == "finish-migrate" and age_ms >= LAST_COPY_MS and (
                    self.samples >= 1 or not watched):
                self.set_run("postmigrate")
                self.set_mig("completed")
                self.set_stage("completed")
        st = self.stage()
        if self.stage_seen[0] != st:
            self.stage_seen = (st, now)
        for n, stage, trig, action in self.faults():
            if trig == "-" and stage == st:
                if (now - self.stage_seen[1]) * 1000 < STAGE_FAULT_MS:
                    return  # not yet; and nothing moves on before it hits
                self.fired.add(n)
                self.log("fault", "%s - %s" % (stage, action))
                if action == "exit":
                    self.die("fault: exit at stage %s" % st, code=9)
                if action == "close":
                    self.log("close", "monitor connections")
                    for s in list(self.clients):
                        self.drop(s)
                if action in ("error", "hang"):
                    self.stuck = action
        if self.role == "dst" and self.mig == "active" and st == "postcopy" and not self.stuck:
            self.set_mig("postcopy-active")  # runs first, pulls the pages it lacks
            self.set_run("running")
            self.set_stage("postcopy-running")
        if (self.role == "dst" and self.mig in ("active", "postcopy-active") and
                self.stage() == "completed" and not self.stuck):
            self.set_mig("completed")
            self.set_run("running")
            self.set_stage("resumed")

    def serve(self):
        signal.signal(signal.SIGTERM, lambda *_: self.die("SIGTERM"))
        signal.signal(signal.SIGINT, lambda *_: self.die("SIGINT"))
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        while True:
            for key, _ in self.sel.select(timeout=0.02):
                what = key.data
                if what in ("qmp", "console"):
                    self.accept(key.fileobj, what)
                elif what == "client":
                    self.readable(key.fileobj)
                else:  # the console: read and forget
                    try:
                        d = key.fileobj.recv(4096)
                    except OSError:
                        d = b""
                    if not d:
                        self.sel.unregister(key.fileobj)
                        key.fileobj.close()
            self.tick()


def main():
    args = sys.argv[1:]
    if "-daemonize" not in args:
        real = real_qemu()
        os.execv(real, [real] + args)
    if os.environ.get("FAKE_QEMU_ARGV0") != "1":
        # tgvm knows a QEMU by its argv[0] (vm_pid_is_qemu): run this script
        # again under a name that says qemu (PYTHONHOME: python cannot find
        # its library from that name).
        env = dict(os.environ, FAKE_QEMU_ARGV0="1",
                   PYTHONHOME=sys.prefix + ":" + sys.exec_prefix)
        os.execve(sys.executable, ["fake-qemu-system-x86_64", os.path.abspath(__file__)] + args,
                  env)
    f = Fake(args)
    f.daemonize()
    f.serve()


if __name__ == "__main__":
    main()
