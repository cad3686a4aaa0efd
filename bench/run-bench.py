#!/usr/bin/env python3
"""`npm run bench`: drive simple-presence (and, with --vs kamailio, Kamailio's presence server)
with SIPp over loopback, find the highest rate each scenario sustains, print a table and keep
the rows in bench/results/<date>.json.

Usage: run-bench.py [--quick] [--vs kamailio] [--transports udp,tcp]
                    [--scenarios publish,subscribe,message,fanout,held] [--seconds S]
                    [--watchers N] [--held N] [--no-build] [--json FILE]

Rate search (per scenario and transport): the offered rate steps up; a step holds when under 1 %
of its calls fail and the 99th-percentile response time is under 200 ms; the search stops at the
first step that does not hold. Both servers run side by side on their own loopback ports and take
each scenario in turn (ours, then theirs), so they share the same machine state.
Needs sipp (Debian sip-tester) and, for --vs kamailio, kamailio + kamailio-presence-modules:
both are installed with apt-get when missing. Loopback only.
"""
import argparse, datetime, glob, json, os, pathlib, platform, shutil, signal, socket, subprocess, sys, tempfile, threading, time, urllib.parse

import cluster_bench  # --workers, --nodes (bench/cluster_bench.py)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCEN = os.path.join(HERE, "scenarios")
HOST = "127.0.0.1"
STEP_RATES = {"quick": [1000, 2000, 4000, 8000], "full": [1000, 2000, 3000, 4000, 6000, 8000, 12000]}
MAX_FAIL_PCT = 1.0
MAX_P99_MS = 200.0
MIN_ACHIEVED = 0.9
TICK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, flush=True)


def progress(msg):
    """One status line, rewritten in place at a terminal; plain lines when stderr is a file."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K… {msg}")
    else:
        sys.stderr.write(f"… {msg}\n")
    sys.stderr.flush()


def end_progress():
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")


# ---------------------------------------------------------------- process statistics

def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            total += (int(parts[11]) + int(parts[12])) / TICK
        except (OSError, IndexError):
            pass
    return total


def pss_kb(pids):
    """Proportional set size summed over the processes: Kamailio's workers share their memory."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def settled_pss_kb(pids, limit_s=15.0):
    """PSS once it stops moving (start-up garbage collected, write-behind flushed): within 1 %
    over 2 s, or the last reading after `limit_s`."""
    readings = [pss_kb(pids)]
    t0 = time.time()
    while time.time() - t0 < limit_s:
        time.sleep(0.5)
        readings.append(pss_kb(pids))
        last = readings[-5:]
        if len(last) == 5 and max(last) - min(last) <= 0.01 * max(last):
            break
    return readings[-1]


class PeakMemory:
    """Samples the servers' PSS every 200 ms while a step runs; keeps the highest."""

    def __init__(self, pids):
        self.pids, self.peak, self._stop = pids, pss_kb(pids), threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, pss_kb(self.pids))

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, pss_kb(self.pids))


def run_measured(cmd, timeout, **kw):
    """Runs a load-generator process; returns (returncode, its CPU seconds, wall seconds)."""
    t0 = time.time()
    p = subprocess.Popen(cmd, **kw)
    deadline = t0 + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            return os.waitstatus_to_exitcode(status), ru.ru_utime + ru.ru_stime, time.time() - t0
        if time.time() > deadline:
            p.kill()
        time.sleep(0.05)


def running(pid):
    """Alive and not a zombie; a process that ends while it is looked at is not running."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def free_port(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def ensure_apt(binary, packages):
    if shutil.which(binary):
        return
    log(f"# {binary} not found: apt-get install {' '.join(packages)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL, env=env)
    subprocess.run(["apt-get", "install", "-y", *packages], check=True, stdout=subprocess.DEVNULL, env=env)


def options_ping(port, timeout):
    """True once the server answers an OPTIONS over UDP."""
    deadline = time.time() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(0.5)
        lp = s.getsockname()[1]
        n = 0
        while time.time() < deadline:
            n += 1
            msg = (f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{lp};branch=z9hG4bKping{os.getpid()}n{n}\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:bench@{HOST}>;tag=p{n}\r\nTo: <sip:{HOST}>\r\nCall-ID: ping{n}x{os.getpid()}\r\n"
                   f"CSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
            s.sendto(msg, (HOST, port))
            try:
                if s.recv(65535).startswith(b"SIP/2.0 200"):
                    return True
            except socket.timeout:
                pass
    return False


# ---------------------------------------------------------------- the servers

class OurServer:
    label = "simple-presence"

    def __init__(self, port, workdir, build, store):
        self.port, self.workdir, self.build, self.store = port, workdir, build, store
        if store == "off":
            self.label = "simple-presence (store off)"
        elif store == "postgres":
            self.label = "simple-presence (PostgreSQL)"
        self.proc = None
        self.schema = None

    def prepare(self):
        main = os.path.join(ROOT, "dist", "src", "cli", "main.js")
        newest = max((os.path.getmtime(f) for f in glob.glob(os.path.join(ROOT, "src", "**", "*.ts"), recursive=True)), default=0)
        if self.build and (not os.path.exists(main) or os.path.getmtime(main) < newest):
            log("# building (npm run build)")
            r = subprocess.run(["npm", "run", "build", "--silent"], cwd=ROOT, capture_output=True, text=True)
            if r.returncode != 0:
                if not os.path.exists(main):
                    sys.exit(f"build failed:\n{r.stdout}{r.stderr}")
                log("# build failed; using the existing dist/ (it may be stale):\n" + (r.stdout + r.stderr).strip()[:800])

    def start(self):
        data = tempfile.mkdtemp(dir=self.workdir, prefix="data-")  # a fresh store each start
        env = dict(os.environ, DATA_DIR=data, SIP_HOST=HOST, SIP_PORT=str(self.port), HTTP_PORT=str(free_port(socket.SOCK_STREAM)),
                   SIP_TLS_PORT=str(free_port(socket.SOCK_STREAM)), AUTH_REQUIRED="false", LOG_LEVEL="warn")
        env.pop("DATABASE_URL", None)
        if self.store == "postgres":
            # A schema of its own on the PostgreSQL server (DATABASE_URL, or the local one), dropped at stop.
            url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
            self.schema = f"sp_bench_{os.getpid()}_{int(time.time())}"
            self.psql(url, f"CREATE SCHEMA {self.schema}")
            self.url = url
            env["DATABASE_URL"] = url + ("&" if "?" in url else "?") + "options=" + urllib.parse.quote(f"-c search_path={self.schema}")
        entry = ([os.path.join(HERE, "serve-memory.mjs")] if self.store == "off"
                 else [os.path.join(ROOT, "dist", "src", "cli", "main.js"), "serve"])
        cmd = ["node", "--expose-gc", f"--import={pathlib.Path(HERE, 'gc-on-signal.mjs').as_uri()}",
               *os.environ.get("BENCH_NODE_FLAGS", "").split(), *entry, "--config", os.path.join(HERE, "server-config.json")]
        self.logf = open(os.path.join(self.workdir, "server.log"), "a")
        self.proc = subprocess.Popen([c for c in cmd if c], cwd=ROOT, env=env, stdout=self.logf, stderr=subprocess.STDOUT)
        if not options_ping(self.port, 60):
            self.stop()
            sys.exit(f"{self.label} did not answer OPTIONS on udp:{HOST}:{self.port}; log: {self.logf.name}")

    def pids(self):
        return [self.proc.pid] if self.proc else []

    @staticmethod
    def psql(url, sql):
        r = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", sql], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"psql failed ({sql}): {r.stderr.strip()}")

    def collect_garbage(self):
        """A full GC (bench/gc-on-signal.mjs) before memory is read."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR2)
            time.sleep(1.0)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.schema:
            self.psql(self.url, f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            self.schema = None


class Kamailio:
    label = "kamailio"

    def __init__(self, port, workdir):
        self.port, self.workdir = port, workdir
        self.pidfile = os.path.join(workdir, "kamailio.pid")
        self.main_pid = None

    def prepare(self):
        ensure_apt("kamailio", ["kamailio", "kamailio-presence-modules"])
        if not os.path.exists("/usr/lib/x86_64-linux-gnu/kamailio/modules/presence.so"):
            ensure_apt("kamailio-presence-absent", ["kamailio-presence-modules"])

    def start(self):
        db = os.path.join(self.workdir, "kamailio-db")
        os.makedirs(db, exist_ok=True)
        for t in ("version", "presentity", "active_watchers", "watchers", "xcap", "pua"):
            shutil.copy(f"/usr/share/kamailio/dbtext/kamailio/{t}", db)
        cfg = open(os.path.join(HERE, "kamailio.cfg")).read()
        cfg = cfg.replace("/tmp/kamailio-bench-db", db).replace("unix:/tmp/kamailio-bench-ctl", f"unix:{self.workdir}/kamailio-ctl")
        path = os.path.join(self.workdir, "kamailio.cfg")
        open(path, "w").write(cfg)
        rundir = os.path.join(self.workdir, "kamailio-run")
        os.makedirs(rundir, exist_ok=True)
        with open(os.path.join(self.workdir, "kamailio.log"), "w") as logf:
            r = subprocess.run(["kamailio", "-f", path, "-A", f"BENCH_PORT={self.port}", "-P", self.pidfile, "-Y", rundir,
                                "-m", "2048", "-M", "32", "-E"], stdout=logf, stderr=subprocess.STDOUT)
        if r.returncode != 0 or not options_ping(self.port, 30):
            sys.exit(f"kamailio did not start; log: {self.workdir}/kamailio.log")
        self.main_pid = int(open(self.pidfile).read().strip())

    def collect_garbage(self):
        pass  # shared memory, no garbage collector

    def pids(self):
        if not self.main_pid:
            return []
        kids = subprocess.run(["pgrep", "-P", str(self.main_pid)], capture_output=True, text=True).stdout.split()
        return [self.main_pid, *map(int, kids)]

    def stop(self):
        if self.main_pid:
            pids = self.pids()
            try:
                os.kill(self.main_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            # Every worker gone (they hold the sockets) before a restart binds again.
            alive = pids
            for _ in range(150):
                alive = [p for p in pids if running(p)]
                if not alive:
                    break
                time.sleep(0.1)
            # A worker that outlived SIGTERM would keep the pid file and the sockets: the next start fails.
            for p in alive:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
            try:
                os.unlink(self.pidfile)
            except FileNotFoundError:
                pass
            self.main_pid = None


# ---------------------------------------------------------------- SIPp steps

class Bench:
    def __init__(self, args, workdir, servers):
        self.a, self.workdir, self.servers = args, workdir, servers
        self.rows = []
        self.uas = None
        self.uas_port = free_port()
        self.run_no = 0

    def sipp(self, server, scenario, transport, extra, timeout):
        """One SIPp run; returns counts, response times and CPU (SIPp's own included)."""
        wd = tempfile.mkdtemp(dir=self.workdir, prefix="sipp-")
        cmd = ["sipp", f"{HOST}:{server.port}", "-sf", os.path.join(SCEN, scenario), "-t", transport, "-i", HOST, "-nostdin",
               "-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-stf", os.path.join(wd, "stat.csv"), "-fd", "1",
               "-max_recv_loops", "10000", "-timeout", f"{timeout}s", "-recv_timeout", "5000", "-buff_size", str(4 << 20)] + getattr(server, "sipp_args", []) + extra
        pids = server.pids()
        uas_cpu0 = cpu_seconds([self.uas.pid]) if self.uas else 0.0
        cpu0 = cpu_seconds(pids)
        with PeakMemory(pids) as mem:
            rc, sipp_cpu, wall = run_measured(cmd, timeout + 30, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu1 = cpu_seconds(pids)
        sipp_cpu += (cpu_seconds([self.uas.pid]) - uas_cpu0) if self.uas else 0.0
        ok = failed = 0
        try:
            rows = open(os.path.join(wd, "stat.csv")).read().strip().splitlines()
            head, last = rows[0].split(";"), rows[-1].split(";")
            col = {name: i for i, name in enumerate(head)}
            ok, failed = int(last[col["SuccessfulCall(C)"]]), int(last[col["FailedCall(C)"]])
            # SIPp's own clock, first call to last answer (its start-up is not the server's time).
            epoch = lambda field: float(field.split("\t")[-1])
            wall = max(0.001, epoch(last[col["CurrentTime"]]) - epoch(last[col["StartTime"]]))
        except (OSError, IndexError, KeyError, ValueError):
            pass
        rtts = []
        for f in glob.glob(os.path.join(wd, "*_rtt.csv")):
            for line in open(f).read().splitlines()[1:]:
                parts = line.split(";")
                if len(parts) >= 2:
                    try:
                        rtts.append(float(parts[1]))
                    except ValueError:
                        pass
        shutil.rmtree(wd, ignore_errors=True)
        rtts.sort()
        pct = lambda q: rtts[min(len(rtts) - 1, int(q * len(rtts)))] if rtts else float("nan")
        return {"ok": ok, "failed": failed, "wall": wall, "p50": pct(0.5), "p99": pct(0.99), "rc": rc,
                "server_cpu_pct": 100.0 * (cpu1 - cpu0) / wall, "server_peak_mb": mem.peak / 1024, "sipp_cpu_pct": 100.0 * sipp_cpu / wall}

    def warm_up(self, server, transport="u1"):
        """A few seconds of light load, not recorded: JIT, the store's first flushes, caches.
        Before a memory reading it runs over TCP: its transactions then end at once (Timers J
        and K are zero), instead of ending 32 s later in the middle of the measurement."""
        calls = 300 if self.a.quick else 1000
        for scen in ("publish", "subscribe"):
            self.run_no += 1
            progress(f"{server.label}: warming up ({scen})")
            self.sipp(server, f"{scen}.xml", transport, ["-key", "run", f"{os.getpid()}w{self.run_no}", "-m", str(calls), "-r", "600", "-l", "1000"], 20)
        end_progress()
        settled_pss_kb(server.pids(), 3.0)

    def users_csv(self):
        path = os.path.join(self.workdir, "users.csv")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("SEQUENTIAL\n")
                for i in range(self.a.pool):
                    f.write(f"mu{i}x{os.getpid()};\n")
        return path

    def prepare_message(self, server):
        """MESSAGE needs its callees: a SIPp UAS that answers 200, and the user pool registered to it
        (again before each search)."""
        if self.uas is None:
            self.uas = subprocess.Popen(["sipp", "-sf", os.path.join(SCEN, "message_uas.xml"), "-t", "u1", "-p", str(self.uas_port), "-i", HOST,
                                         "-nostdin", "-buff_size", str(4 << 20)], cwd=self.workdir, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        # Before every search, not once: a step that overloaded the server can leave bindings
        # marked unreachable (their MESSAGEs then go to offline storage), which a REGISTER clears.
        progress(f"{server.label}: registering {self.a.pool} users")
        r = self.sipp(server, "register.xml", "u1", ["-inf", self.users_csv(), "-key", "uas_ip", HOST, "-key", "uas_port", str(self.uas_port),
                                                     "-m", str(self.a.pool), "-r", "2000", "-l", "2000"], 60)
        if r["failed"] or r["ok"] < self.a.pool:
            log(f"# {server.label}: {r['ok']} of {self.a.pool} users registered")

    def rate_search(self, server, scen, transport):
        """Steps up the offered rate until a step does not hold; then, with the default steps, one
        more step halfway between the last that held and the first that did not (rounded to 100/s),
        so that a server between two coarse steps is not read as the lower one."""
        best, steps = None, []
        failed_at = None
        # Each search starts on quiet servers: a store still writing behind the previous
        # scenario's state, or the other server's backlog, must not weigh on its first step.
        self.settle()
        for rate in self.a.rates:
            row = self.step(server, scen, transport, rate)
            steps.append(row)
            if not row["holds"]:
                failed_at = rate
                break
            best = row
        if self.a.refine and best and failed_at:
            mid = int(round((best["offered"] + failed_at) / 2 / 100.0) * 100)
            if best["offered"] < mid < failed_at:
                row = self.step(server, scen, transport, mid)
                steps.append(row)
                if row["holds"]:
                    best = row
        summary = dict(best or steps[0], sustained=best["offered"] if best else 0, kind="rate")
        self.rows.append({"kind": "steps", "server": server.label, "scenario": scen, "transport": transport, "steps": steps})
        return summary

    def step(self, server, scen, transport, rate):
        """One offered rate for `seconds`: does it hold (failures, p99, achieved rate)?"""
        tflag = getattr(server, "sipp_transport", {"udp": "u1", "tcp": "t1"})[transport]
        self.run_no += 1
        calls = max(1, int(rate * self.a.seconds))
        extra = ["-key", "run", f"{os.getpid()}r{self.run_no}", "-m", str(calls), "-r", str(rate), "-l", str(max(2000, rate * 2))]
        if scen == "message":
            extra += ["-inf", self.users_csv()]
        progress(f"{server.label}: {scen}/{transport} at {rate}/s for {self.a.seconds:g} s")
        r = self.sipp(server, f"{scen}.xml", tflag, extra, int(self.a.seconds * 3 + 15))
        total = r["ok"] + r["failed"]
        failed_pct = 100.0 * r["failed"] / total if total else 100.0
        achieved = r["ok"] / r["wall"] if r["wall"] else 0.0
        # Also: the offered rate was really offered (SIPp, on the same cores, can fall behind).
        holds = (total >= calls * 0.99 and failed_pct < MAX_FAIL_PCT and r["p99"] < MAX_P99_MS
                 and achieved >= MIN_ACHIEVED * rate)
        row = {"server": server.label, "scenario": scen, "transport": transport, "offered": rate,
               "achieved": round(achieved, 1), "calls": calls, "failed": r["failed"],
               "failed_pct": round(failed_pct, 2), "p50_ms": r["p50"], "p99_ms": r["p99"],
               "server_cpu_pct": round(r["server_cpu_pct"], 1), "server_peak_mb": round(r["server_peak_mb"], 1),
               # CPU per call moves less with other load on the machine than rates do.
               "server_cpu_us_per_call": round(r["server_cpu_pct"] / 100 * 1e6 / achieved) if achieved else None,
               "sipp_cpu_pct": round(r["sipp_cpu_pct"], 1), "holds": holds}
        end_progress()
        log(f"  {server.label:16} {scen:9} {transport:3} {rate:6d}/s -> {row['achieved']:8.0f}/s  fail {failed_pct:5.2f}%  "
            f"p50 {r['p50']:5.0f}  p99 {r['p99']:5.0f} ms  cpu {row['server_cpu_pct']:4.0f}%  {row['server_peak_mb']:6.0f} MB  "
            f"sipp {row['sipp_cpu_pct']:4.0f}%{'' if holds else '   <- does not hold'}")
        time.sleep(1)  # let retransmissions and transaction timers settle between steps
        if not holds:
            self.settle()
        return row

    def settle(self, limit_s=10.0):
        """Before a search and after a step that did not hold: wait until every server is idle
        (under 5 % of a core over half a second), at most `limit_s`, so that the backlog one
        server still works through (retransmissions, timers, its store) does not weigh on the
        next step, its own or the other's."""
        deadline = time.time() + limit_s
        progress("waiting for the servers to settle")
        while time.time() < deadline:
            pids = [p for s in self.servers for p in s.pids()]
            c0 = cpu_seconds(pids)
            time.sleep(0.5)
            if (cpu_seconds(pids) - c0) / 0.5 < 0.05:
                break
        end_progress()

    def swarm(self, server, mode, n):
        """fan-out / held state: the watcher swarm (bench/swarm.py) against one server."""
        pids = server.pids()
        self.run_no += 1
        cmd = [sys.executable, os.path.join(HERE, "swarm.py"), mode, f"{HOST}:{server.port}", "--watchers", str(n),
               "--run", f"{os.getpid()}{mode[0]}{self.run_no}", *getattr(server, "swarm_args", [])]
        progress(f"{server.label}: {mode} with {n} watchers")
        server.collect_garbage()
        base_kb = settled_pss_kb(pids, 8.0 if self.a.quick else 15.0)
        cpu0 = cpu_seconds(pids)
        t0 = time.time()
        out = {}
        with PeakMemory(pids) as mem:
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for line in p.stdout:
                if line.startswith("SUBSCRIBED "):
                    server.collect_garbage()
                    held_kb = settled_pss_kb(pids, 4.0 if self.a.quick else 15.0)
                    out["held_mb"] = round(held_kb / 1024, 1)
                    out["base_mb"] = round(base_kb / 1024, 1)
                    accepted = json.loads(line[len("SUBSCRIBED "):])["accepted"]
                    # Memory given back while the subscriptions were made (garbage from before, pages the
                    # allocator returned) can outweigh their growth with few subscriptions: then there is
                    # no reading, rather than a negative one.
                    grown = held_kb - base_kb
                    out["bytes_per_subscription"] = round(grown * 1024 / accepted) if accepted and grown > 0 else None
                    progress(f"{server.label}: {mode}: {accepted} subscriptions held, all presentities change now")
                    p.stdin.write("go\n")
                    p.stdin.flush()
                elif line.startswith("PROGRESS "):
                    progress(f"{server.label}: {mode}: {line[9:].strip()}")
                elif line.startswith("RESULT "):
                    out.update(json.loads(line[len("RESULT "):]))
            _, status, ru = os.wait4(p.pid, 0)
        wall = time.time() - t0
        end_progress()
        row = dict(out, server=server.label, scenario=mode, transport="udp", kind=mode,
                   server_cpu_pct=round(100.0 * (cpu_seconds(pids) - cpu0) / wall, 1), server_peak_mb=round(mem.peak / 1024, 1),
                   sipp_cpu_pct=round(100.0 * (ru.ru_utime + ru.ru_stime) / wall, 1))
        if mode == "fanout":
            row["notify_per_s"] = round(out.get("fanout_notified", 0) / out["fanout_s"], 1) if out.get("fanout_s") else 0.0
            log(f"  {server.label:16} fan-out   {n} watchers: all NOTIFYs answered in {out.get('fanout_s', float('nan')) * 1000:.0f} ms "
                f"({out.get('fanout_notified')} notified, {row['notify_per_s']:.0f}/s)  cpu {row['server_cpu_pct']:.0f}%  "
                f"{row['server_peak_mb']:.0f} MB  swarm cpu {row['sipp_cpu_pct']:.0f}%")
        else:
            log(f"  {server.label:16} held      {out.get('accepted')} subscriptions: {out.get('bytes_per_subscription')} B each "
                f"({out.get('base_mb')} -> {out.get('held_mb')} MB); change of all: {out.get('change_notified')} NOTIFYs at "
                f"{out.get('notify_rate', 0):.0f}/s  cpu {row['server_cpu_pct']:.0f}%  swarm cpu {row['sipp_cpu_pct']:.0f}%")
        time.sleep(1)
        return row


# ---------------------------------------------------------------- report

def fmt(v, spec):
    return "—" if v is None or v != v else format(v, spec)


def table(results, servers):
    ours = servers[0].label
    theirs = servers[1].label if len(servers) > 1 else None
    by = {(r["server"], r["scenario"], r["transport"]): r for r in results}
    keys = []
    for r in results:
        k = (r["scenario"], r["transport"])
        if k not in keys:
            keys.append(k)
    lines = []
    head = ("| scenario | transport | server | sustained (offered/s) | achieved/s | failures | p50 ms | p99 ms | server CPU | server peak MB | SIPp CPU |"
            + (" ours/theirs |" if theirs else ""))
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for scen, tr in keys:
        for s in servers:
            r = by.get((s.label, scen, tr))
            if not r:
                continue
            ratio = ""
            if theirs and s.label == ours:
                t = by.get((theirs, scen, tr))
                ratio = " " + ratio_text(r, t) + " |"
            elif theirs:
                ratio = " |"
            if r["kind"] == "rate":
                sustained = r["sustained"] if r["sustained"] else f"< {r['offered']}"
                lines.append(f"| {scen} | {tr} | {s.label} | {sustained} | {r['achieved']:.0f} | {r['failed_pct']:.2f}% | {fmt(r['p50_ms'], '.0f')} | "
                             f"{fmt(r['p99_ms'], '.0f')} | {r['server_cpu_pct']:.0f}% | {r['server_peak_mb']:.0f} | {r['sipp_cpu_pct']:.0f}% |{ratio}")
            elif r["kind"] == "fanout":
                lines.append(f"| fan-out {r['watchers']} watchers | {tr} | {s.label} | all NOTIFYs answered in {r.get('fanout_s', float('nan')) * 1000:.0f} ms | "
                             f"{r.get('notify_per_s', 0):.0f} NOTIFY/s | {r.get('watchers', 0) - r.get('fanout_notified', 0)} missed | — | — | "
                             f"{r['server_cpu_pct']:.0f}% | {r['server_peak_mb']:.0f} | {r['sipp_cpu_pct']:.0f}% (swarm) |{ratio}")
            else:
                lines.append(f"| held {r['watchers']} subscriptions | {tr} | {s.label} | {fmt(r.get('bytes_per_subscription'), '.0f')} B/subscription | "
                             f"{r.get('notify_rate', 0):.0f} NOTIFY/s on change | {r.get('watchers', 0) - (r.get('change_notified') or 0)} missed | — | — | "
                             f"{r['server_cpu_pct']:.0f}% | {r['server_peak_mb']:.0f} | {r['sipp_cpu_pct']:.0f}% (swarm) |{ratio}")
    return "\n".join(lines)


def ratio_text(ours, theirs):
    if not theirs:
        return "—"
    if ours["kind"] == "rate":
        a, b = ours["sustained"], theirs["sustained"]
        if not b:
            return "—"
        # Ours held no step: below its first one.
        return f"{a / b:.2f}×" if a else f"< {ours['offered'] / b:.2f}×"
    if ours["kind"] == "fanout":
        a, b = ours.get("notify_per_s"), theirs.get("notify_per_s")
        return f"{a / b:.2f}× speed" if a and b else "—"
    a, b = ours.get("bytes_per_subscription"), theirs.get("bytes_per_subscription")
    mem = f"{a / b:.2f}× memory" if a and b and b > 0 else "—"
    ra, rb = ours.get("notify_rate"), theirs.get("notify_rate")
    return mem + (f", {ra / rb:.2f}× NOTIFY/s" if ra and rb else "")


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ver = lambda cmd: (subprocess.run(cmd, capture_output=True, text=True).stdout or "").strip().splitlines()[:1]
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "node": ver(["node", "--version"]),
            "sipp": [l.strip() for l in ver(["sipp", "-v"])], "kamailio": ver(["kamailio", "-v"]) if shutil.which("kamailio") else None}


def main():
    ap = argparse.ArgumentParser(description="SIPp benchmark of simple-presence (optionally against Kamailio)")
    ap.add_argument("--quick", action="store_true", help="smaller counts and shorter steps (under 2 minutes)")
    ap.add_argument("--vs", choices=["kamailio"], help="run the same scenarios against Kamailio too")
    ap.add_argument("--transports", help="udp,tcp (default: both; --quick: udp)")
    ap.add_argument("--scenarios", default="publish,subscribe,message,fanout,held")
    ap.add_argument("--rates", help="offered rates to step through, e.g. 1000,2000,4000")
    ap.add_argument("--seconds", type=float, help="length of a rate step (default 3, --quick 2)")
    ap.add_argument("--watchers", type=int, help="fan-out watchers (default 10000, --quick 2000)")
    ap.add_argument("--held", type=int, help="held-state subscriptions (default 100000, --quick 10000)")
    ap.add_argument("--pool", type=int, default=2000, help="registered users MESSAGE goes to")
    ap.add_argument("--port", type=int, default=0, help="our server's SIP port (default: a free one)")
    ap.add_argument("--store", choices=["pglite", "postgres", "off"], default="pglite",
                    help="our server's store: embedded PGlite in a fresh data directory (default), PostgreSQL (DATABASE_URL or the local server, a fresh schema), or off (memory only)")
    ap.add_argument("--no-build", dest="build", action="store_false")
    ap.add_argument("--json", help="results file (default bench/results/<date>.json)")
    cluster_bench.add_arguments(ap)
    a = ap.parse_args()
    mode = "quick" if a.quick else "full"
    a.refine = not a.rates  # rates given by hand are stepped through exactly
    a.rates = [int(x) for x in a.rates.split(",")] if a.rates else STEP_RATES[mode]
    a.seconds = a.seconds or (2.0 if a.quick else 3.0)
    a.watchers = a.watchers or (2000 if a.quick else 10000)
    a.held = a.held or (10000 if a.quick else 100000)
    transports = (a.transports or ("udp" if a.quick else "udp,tcp")).split(",")
    scenarios = a.scenarios.split(",")

    ensure_apt("sipp", ["sip-tester"])
    workdir = tempfile.mkdtemp(prefix="simple-presence-bench-")
    servers = cluster_bench.servers(a, workdir, free_port, options_ping) or [OurServer(a.port or free_port(), workdir, a.build, a.store)]
    if a.vs == "kamailio":
        servers.append(Kamailio(free_port(), workdir))
    started = time.time()
    bench = Bench(a, workdir, servers)
    results = []
    try:
        for s in servers:
            s.prepare()
            s.start()
            log(f"# {s.label} on udp/tcp {HOST}:{s.port} (pid {s.pids()[0]})")
            bench.warm_up(s)
        for scen in scenarios:
            if scen in ("publish", "subscribe", "message"):
                for tr in transports:
                    for s in servers:
                        if scen == "message":
                            bench.prepare_message(s)
                        results.append(bench.rate_search(s, scen, tr))
            elif scen == "fanout":
                for s in servers:
                    results.append(bench.swarm(s, "fanout", a.watchers))
            elif scen == "held":
                # From a fresh start, so the memory growth is the subscriptions' alone; warmed up
                # (a few garbage collections behind it), or start-up garbage freed during the
                # run would count against the subscriptions.
                for s in servers:
                    s.stop()
                    s.start()
                    bench.warm_up(s, "t1")
                for s in servers:
                    results.append(bench.swarm(s, "held", a.held))
            else:
                sys.exit(f"unknown scenario {scen}")
    finally:
        for s in servers:
            s.stop()
        if bench.uas is not None:
            bench.uas.terminate()
            bench.uas.wait(10)
    elapsed = time.time() - started
    date = datetime.datetime.now().astimezone()
    info = machine()
    command = "npm run bench" + (" --" if len(sys.argv) > 1 else "") + "".join(f" {x}" for x in sys.argv[1:])
    log("")
    log(f"{date:%Y-%m-%d %H:%M %Z}, {info['cpu']} ({info['cores']} cores), node {''.join(info['node'])}; `{command}`; {elapsed:.0f} s")
    log(table(results, servers))
    out = a.json or os.path.join(HERE, "results", f"{date:%Y-%m-%dT%H-%M-%S}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"date": date.isoformat(), "command": command, "mode": mode, "machine": info, "elapsed_s": round(elapsed, 1),
                   "criteria": {"max_failed_pct": MAX_FAIL_PCT, "max_p99_ms": MAX_P99_MS, "min_achieved_of_offered": MIN_ACHIEVED}, "results": results, "steps": bench.rows}, f, indent=1)
    log(f"# results: {os.path.relpath(out, ROOT)}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
