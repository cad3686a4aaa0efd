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
import argparse, contextlib, datetime, glob, json, os, pathlib, platform, shutil, signal, socket, subprocess, sys, tempfile, threading, time, urllib.parse, urllib.request

import cluster_bench  # --workers, --nodes (bench/cluster_bench.py)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import charts  # noqa: E402  (bench/charts.py: plain SVG)
ROOT = os.path.dirname(HERE)
SCEN = os.path.join(HERE, "scenarios")
HOST = "127.0.0.1"
STEP_RATES = {"quick": [1000, 2000, 4000, 8000], "full": [1000, 2000, 3000, 4000, 6000, 8000, 12000]}
MAX_FAIL_PCT = 1.0
MAX_P99_MS = 200.0
MIN_ACHIEVED = 0.9
# Issue 20: p99 under 50 ms at half the sustained rate, also after heavy load.
STEADY_P99_MS = 50.0
ALL_SCENARIOS = ["publish", "subscribe", "message", "cpu", "overload", "after", "fanout", "held", "memory", "connections"]
# `connections` (100,000 held connections, its own servers) only when asked for.
DEFAULT_SCENARIOS = [s for s in ALL_SCENARIOS if s != "connections"]
TICK = os.sysconf("SC_CLK_TCK")
# Timer J (64 × T1) and a margin: UDP non-INVITE server transactions are gone after it.
UDP_TRANSACTIONS_GONE_S = 34


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


def listening_after(server, timeout):
    """Seconds from the server's process start to its "simple-presence listening" log line (None
    when it did not come in `timeout`)."""
    deadline = time.time() + timeout
    pid = server.proc.pid
    while time.time() < deadline and server.proc.poll() is None:
        with open(server.logf.name) as f:
            for line in f:
                if f'"pid":{pid},' in line and '"msg":"simple-presence listening"' in line:
                    at = datetime.datetime.fromisoformat(json.loads(line)["time"].replace("Z", "+00:00")).timestamp()
                    return round(at - server.t0, 2)
        time.sleep(0.2)
    return None


def rss_kb(pids):
    """Resident set size (VmRSS) summed over the processes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
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


class Sampler:
    """Calls `sample()` every `every` seconds on a thread of its own while a `with` block runs."""

    every = 0.2

    def __init__(self):
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(self.every):
            self.sample()

    def sample(self):
        raise NotImplementedError

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


class PeakMemory(Sampler):
    """Samples the servers' PSS every 200 ms while a step runs; keeps the highest."""

    def __init__(self, pids):
        super().__init__()
        self.pids, self.peak = pids, pss_kb(pids)

    def sample(self):
        self.peak = max(self.peak, pss_kb(self.pids))

    def __exit__(self, *exc):
        super().__exit__(*exc)
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


def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] if sorted_values else float("nan")


def scrape(url):
    """Our server's /metrics as {series: value} (the simple_presence_ ones)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            text = r.read().decode()
    except (OSError, ValueError):
        return None
    out = {}
    for line in text.splitlines():
        if line.startswith("simple_presence_"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


class MetricsScraper(Sampler):
    """Reads /metrics every `every` seconds while a run lasts: (time, {series: value})."""

    def __init__(self, url, every=0.25):
        super().__init__()
        self.url, self.every, self.samples = url, every, []

    def sample(self):
        m = scrape(self.url)
        if m is not None:
            self.samples.append((time.time(), m))


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
    kind = "ours"
    freezable = True  # Bench.focus

    def __init__(self, port, workdir, build, store):
        self.port, self.workdir, self.build, self.store = port, workdir, build, store
        self.label = {"off": "simple-presence (store off)", "postgres": "simple-presence (PostgreSQL)"}.get(store, "simple-presence")
        self.proc = None
        self.schema = None
        self.http_port = None

    def metrics_url(self):
        return f"http://{HOST}:{self.http_port}/metrics" if self.http_port else None

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

    def start(self, keep_data=False, wait=True):
        """A fresh store each start, or (`keep_data`) the one of the last start again. Without `wait`,
        returns at once (the log at info level), not when the server answers."""
        data = self.data if keep_data else tempfile.mkdtemp(dir=self.workdir, prefix="data-")
        self.data = data
        self.http_port = free_port(socket.SOCK_STREAM)
        env = dict(os.environ, DATA_DIR=data, SIP_HOST=HOST, SIP_PORT=str(self.port), HTTP_PORT=str(self.http_port),
                   SIP_TLS_PORT=str(free_port(socket.SOCK_STREAM)), AUTH_REQUIRED="false",
                   LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL") or ("warn" if wait else "info"))
        env.pop("DATABASE_URL", None)
        if self.store == "postgres":
            # A schema of its own on the PostgreSQL server (DATABASE_URL, or the local one), dropped at stop.
            url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
            if not keep_data:
                self.schema = f"sp_bench_{os.getpid()}_{int(time.time())}"
                self.psql(url, f"CREATE SCHEMA {self.schema}")
            self.url = url
            env["DATABASE_URL"] = url + ("&" if "?" in url else "?") + "options=" + urllib.parse.quote(f"-c search_path={self.schema}")
        entry = ([os.path.join(HERE, "serve-memory.mjs")] if self.store == "off"
                 else [os.path.join(ROOT, "dist", "src", "cli", "main.js"), "serve"])
        cmd = ["node", "--expose-gc", f"--import={pathlib.Path(HERE, 'gc-on-signal.mjs').as_uri()}",
               *cluster_bench.server_node_flags(), *entry, "--config", os.path.join(HERE, "server-config.json")]
        self.logf = open(os.path.join(self.workdir, "server.log"), "a")
        self.t0 = time.time()
        self.proc = subprocess.Popen([c for c in cmd if c], cwd=ROOT, env=env, stdout=self.logf, stderr=subprocess.STDOUT)
        if not wait:
            return
        answered = options_ping(self.port, 60)
        # Process start to the first OPTIONS answered: the store opened, migrated and its soft state loaded.
        self.start_s = time.time() - self.t0
        if not answered:
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
        """A full, memory-reducing GC (bench/gc-on-signal.mjs) before memory is read."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR2)
            time.sleep(1.0)

    def stop(self, keep_data=False):
        if self.proc and self.proc.poll() is None:
            signal_all(self.pids(), signal.SIGCONT)  # a server frozen by Bench.focus stops too
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.schema and not keep_data:
            self.psql(self.url, f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            self.schema = None


class Kamailio:
    label = "kamailio"
    kind = "kamailio"
    freezable = True  # Bench.focus

    def metrics_url(self):
        return None

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
            signal_all(pids, signal.SIGCONT)  # a server frozen by Bench.focus stops too
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
        self.sustained_rates = {}
        self.focused = None

    def focus(self, server):
        """Only the server being measured runs; the others are frozen (SIGSTOP) until their turn.
        Both servers are alive through the whole run, and each has background work of its own
        (Kamailio's presence timers sweep every presentity it holds, for seconds of a core after
        a PUBLISH search; ours writes behind and trims its heap): that work must fall in its own
        time, not in the other server's steps. What came due while a server was frozen runs when
        it is continued, before its next step (settle)."""
        if server is self.focused or not self.a.isolate or len(self.servers) < 2 or not getattr(server, "freezable", False):
            return
        for other in self.servers:
            if other is not server and getattr(other, "freezable", False):
                signal_all(other.pids(), signal.SIGSTOP)
        signal_all(server.pids(), signal.SIGCONT)
        self.focused = server
        # Timers that came due while it was frozen fire within a tick or two of its clock
        # (Kamailio's sweep began about 2 s after it was continued): let them start, then settle.
        time.sleep(3.0)
        self.settle(20.0)

    def release(self):
        """Every server running again (before they are stopped, or measured together)."""
        for s in self.servers:
            if getattr(s, "freezable", False):
                signal_all(s.pids(), signal.SIGCONT)
        self.focused = None

    def sipp(self, server, scenario, transport, extra, timeout, timeline=False):
        """One SIPp run; returns counts, response times and CPU (SIPp's own included). With
        `timeline`, also SIPp's per-second counters and every response time on the wall clock."""
        wd = tempfile.mkdtemp(dir=self.workdir, prefix="sipp-")
        cmd = ["sipp", f"{HOST}:{server.port}", "-sf", os.path.join(SCEN, scenario), "-t", transport, "-i", HOST, "-nostdin",
               "-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-stf", os.path.join(wd, "stat.csv"), "-fd", "1",
               "-max_recv_loops", "10000", "-timeout", f"{timeout}s", "-recv_timeout", "5000", "-buff_size", str(4 << 20),
               # A call ended by an unexpected answer (a 503 past capacity) ends there: no BYE, which
               # for these non-INVITE calls would only be more load (answered 405, 481 or 503 again).
               "-default_behaviors", "all,-bye"] + getattr(server, "sipp_args", []) + extra
        self.focus(server)
        pids = server.pids()
        others = [p for s in self.servers if s is not server for p in s.pids()]
        others0 = cpu_seconds(others)
        uas_cpu0 = cpu_seconds([self.uas.pid]) if self.uas else 0.0
        cpu0 = cpu_seconds(pids)
        with PeakMemory(pids) as mem:
            rc, sipp_cpu, wall = run_measured(cmd, timeout + 30, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu1 = cpu_seconds(pids)
        others_cpu = cpu_seconds(others) - others0
        sipp_cpu += (cpu_seconds([self.uas.pid]) - uas_cpu0) if self.uas else 0.0
        ok = failed = unexpected = 0
        started = None
        series = []
        epoch = lambda field: float(field.split("\t")[-1])
        try:
            rows = open(os.path.join(wd, "stat.csv")).read().strip().splitlines()
            head, last = rows[0].split(";"), rows[-1].split(";")
            col = {name: i for i, name in enumerate(head)}
            ok, failed = int(last[col["SuccessfulCall(C)"]]), int(last[col["FailedCall(C)"]])
            # A call ended by an answer the scenario does not expect: here, a 503 past capacity.
            unexpected = int(last[col["FailedUnexpectedMessage(C)"]])
            started = epoch(last[col["StartTime"]])
            # SIPp's own clock, first call to last answer (its start-up is not the server's time).
            wall = max(0.001, epoch(last[col["CurrentTime"]]) - started)
            if timeline:
                for row in rows[1:]:
                    f = row.split(";")
                    series.append((epoch(f[col["CurrentTime"]]), int(f[col["SuccessfulCall(C)"]]), int(f[col["FailedCall(C)"]]),
                                   int(f[col["FailedUnexpectedMessage(C)"]])))
        except (OSError, IndexError, KeyError, ValueError):
            pass
        rtts, timed = [], []
        for f in glob.glob(os.path.join(wd, "*_rtt.csv")):
            for line in open(f).read().splitlines()[1:]:
                parts = line.split(";")
                if len(parts) >= 2:
                    try:
                        rtts.append(float(parts[1]))
                        if timeline and started is not None:
                            # Date_ms counts from SIPp's start.
                            timed.append((started + float(parts[0]) / 1000.0, float(parts[1])))
                    except ValueError:
                        pass
        shutil.rmtree(wd, ignore_errors=True)
        rtts.sort()
        out = {"ok": ok, "failed": failed, "unexpected": unexpected, "wall": wall, "p50": percentile(rtts, 0.5), "p99": percentile(rtts, 0.99), "rc": rc,
               "server_cpu_pct": 100.0 * (cpu1 - cpu0) / wall, "server_peak_mb": mem.peak / 1024, "sipp_cpu_pct": 100.0 * sipp_cpu / wall,
               "others_cpu_pct": 100.0 * others_cpu / wall}
        if timeline:
            out.update(series=series, timed=timed)
        return out

    def warm_up(self, server, transport="u1"):
        """A few seconds of light load, not recorded: JIT, the store's first flushes, caches.
        Before a memory reading it runs over TCP: its transactions then end at once (Timers J
        and K are zero), instead of ending 32 s later in the middle of the measurement."""
        calls = 300 if self.a.quick else 1000
        # `serve --workers N`: a socket per call, or SO_REUSEPORT gives every warm-up call to
        # one worker and the others meet the first measured step cold (JIT, buckets).
        if transport == "u1":
            transport = getattr(server, "sipp_transport", {}).get("udp", "u1")
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
        # A busy server may refuse some REGISTERs with 503 (overload control): those users are
        # registered again, at half the rate each time (a REGISTER that refreshes changes nothing).
        rate = 2000
        for attempt in range(4):
            progress(f"{server.label}: registering {self.a.pool} users at {rate}/s")
            r = self.sipp(server, "register.xml", "u1", ["-inf", self.users_csv(), "-key", "uas_ip", HOST, "-key", "uas_port", str(self.uas_port),
                                                         "-m", str(self.a.pool), "-r", str(rate), "-l", "2000"], 60)
            if not r["failed"] and r["ok"] >= self.a.pool:
                break
            rate = max(100, rate // 2)
        else:
            log(f"# {server.label}: {r['ok']} of {self.a.pool} users registered")

    def rate_search(self, server, scen, transport):
        """Steps up the offered rate until a step does not hold; then, with the default steps, one
        more step halfway between the last that held and the first that did not (rounded to 100/s),
        so that a server between two coarse steps is not read as the lower one."""
        best, steps = None, []
        failed_at = None
        # Each search starts on quiet servers: a store still writing behind the previous
        # scenario's state, or the other server's backlog, must not weigh on its first step.
        self.focus(server)
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
        self.sustained_rates[(server.label, scen, transport)] = summary["sustained"]
        return summary

    def sustained(self, server, scen, transport, results):
        """This run's sustained rate of a scenario: from its search, or a search now (its row joins the results)."""
        key = (server.label, scen, transport)
        if key not in self.sustained_rates:
            log(f"# {server.label}: {scen}/{transport} not searched yet in this run: searching its sustained rate first")
            if scen == "message":
                self.prepare_message(server)
            results.append(self.rate_search(server, scen, transport))
        return self.sustained_rates[key]

    def fixed(self, server, scen, transport):
        """CPU per call at one fixed rate (--fixed-rate), the same for every server: CPU time per
        call moves less with the machine's other load than rates do."""
        row = self.step(server, scen, transport, self.a.fixed_rate, self.a.fixed_seconds, "fixed ")
        return dict(row, kind="fixed")

    def half_rate(self, server, condition, results):
        """SUBSCRIBE and MESSAGE at half their sustained rate (UDP) under `condition`: the p99s."""
        rows = []
        for scen in ("subscribe", "message"):
            rate = max(100, int(self.sustained(server, scen, "udp", results) / 2))
            if scen == "message":
                self.prepare_message(server)
            row = self.step(server, scen, "udp", rate, self.a.seconds * 2, f"{condition}: ")
            rows.append(dict(row, kind="latency", condition=condition, steady=row["p99_ms"] < STEADY_P99_MS))
        return rows

    def after_load(self, server, results):
        """SUBSCRIBE and MESSAGE right after --after publications (PUBLISH calls: a new publication,
        then its refresh), at half their sustained rates: what heavy load leaves behind (store
        write-behind, timers, old-generation garbage) shows in their p99."""
        rates = [self.sustained(server, scen, "udp", results) for scen in ("publish", "subscribe", "message")]
        self.prepare_message(server)
        n = self.a.after
        rate = max(500, rates[0] or self.a.fixed_rate)
        t0, made = time.time(), 0
        # Those refused with 503 (a busy server) are made again, at half the rate each time.
        for attempt in range(3):
            self.run_no += 1
            progress(f"{server.label}: {n - made} publications at {rate}/s")
            r = self.sipp(server, "publish.xml", "u1", ["-key", "run", f"{os.getpid()}a{self.run_no}", "-m", str(n - made), "-r", str(rate),
                                                       "-l", str(max(2000, rate * 2))], int((n - made) / rate * 3 + 30))
            made += r["ok"]
            if made >= n:
                break
            rate = max(250, rate // 2)
        end_progress()
        log(f"  {server.label:16} {made} of {n} publications made in {time.time() - t0:.0f} s")
        return self.half_rate(server, f"after {n // 1000}k PUBLISH", results)

    def step(self, server, scen, transport, rate, seconds=None, what=""):
        """One offered rate for `seconds` (default --seconds): does it hold (failures, p99, achieved rate)?"""
        seconds = seconds or self.a.seconds
        tflag = getattr(server, "sipp_transport", {"udp": "u1", "tcp": "t1"})[transport]
        self.run_no += 1
        calls = max(1, int(rate * seconds))
        extra = ["-key", "run", f"{os.getpid()}r{self.run_no}", "-m", str(calls), "-r", str(rate), "-l", str(max(2000, rate * 2))]
        if scen == "message":
            extra += ["-inf", self.users_csv()]
        progress(f"{server.label}: {what}{scen}/{transport} at {rate}/s for {seconds:g} s")
        r = self.sipp(server, f"{scen}.xml", tflag, extra, int(seconds * 3 + 15))
        total = r["ok"] + r["failed"]
        failed_pct = 100.0 * r["failed"] / total if total else 100.0
        achieved = r["ok"] / r["wall"] if r["wall"] else 0.0
        # Also: the offered rate was really offered (SIPp, on the same cores, can fall behind).
        holds = (total >= calls * 0.99 and failed_pct < MAX_FAIL_PCT and r["p99"] < MAX_P99_MS
                 and achieved >= MIN_ACHIEVED * rate)
        row = {"server": server.label, "scenario": scen, "transport": transport, "offered": rate,
               "achieved": round(achieved, 1), "calls": calls, "failed": r["failed"],
               "failed_pct": round(failed_pct, 2), "refused_503": r["unexpected"], "p50_ms": r["p50"], "p99_ms": r["p99"],
               "server_cpu_pct": round(r["server_cpu_pct"], 1), "server_peak_mb": round(r["server_peak_mb"], 1),
               # CPU per call moves less with other load on the machine than rates do.
               "server_cpu_us_per_call": round(r["server_cpu_pct"] / 100 * 1e6 / achieved) if achieved >= 1 else None,
               "sipp_cpu_pct": round(r["sipp_cpu_pct"], 1), "other_servers_cpu_pct": round(r["others_cpu_pct"], 1), "holds": holds}
        end_progress()
        log(f"  {server.label:16} {what}{scen:9} {transport:3} {rate:6d}/s -> {row['achieved']:8.0f}/s  fail {failed_pct:5.2f}%  "
            f"p50 {r['p50']:5.0f}  p99 {r['p99']:5.0f} ms  cpu {row['server_cpu_pct']:4.0f}%  {row['server_peak_mb']:6.0f} MB  "
            f"sipp {row['sipp_cpu_pct']:4.0f}%{'' if holds else '   <- does not hold'}")
        time.sleep(1)  # let retransmissions and transaction timers settle between steps
        if not holds:
            self.settle()
        return row

    def overload(self, server, scen, transport, results):
        """Offered 2 × the sustained rate for --overload-seconds, between stretches at half of it:
        what completes, what is refused with 503 (SIPp ends such a call: an answer its scenario
        does not expect), the p99, and, second by second, the same with our event-loop lag,
        receive delay and overload level read from /metrics."""
        sustained = self.sustained(server, scen, transport, results)
        if not sustained:
            log(f"# {server.label}: {scen}/{transport} sustains no rate here: no overload run")
            return None
        low, high = max(1, sustained // 2), 2 * sustained
        lead, hot, tail = self.a.overload_lead, self.a.overload_seconds, self.a.overload_tail
        phases = [("before", low, 0.0, lead), ("2x", high, lead, hot), ("after", low, lead + hot, tail)]
        if scen == "message":
            self.prepare_message(server)
        # Focused before the phases' clock starts: their SIPp runs start on schedule.
        self.focus(server)
        self.settle()
        tflag = getattr(server, "sipp_transport", {"udp": "u1", "tcp": "t1"})[transport]
        got, keys = {}, {}
        for name, *_ in phases:
            self.run_no += 1
            keys[name] = f"{os.getpid()}o{self.run_no}"
        url = getattr(server, "metrics_url", lambda: None)()
        t0 = time.time() + 0.5

        def run_phase(name, rate, start, dur):
            time.sleep(max(0.0, t0 + start - time.time()))
            extra = ["-key", "run", keys[name], "-m", str(int(rate * dur)), "-r", str(rate), "-l", str(max(2000, rate * 2))]
            if scen == "message":
                extra += ["-inf", self.users_csv()]
            got[name] = self.sipp(server, f"{scen}.xml", tflag, extra, int(dur * 3 + 20), timeline=True)

        progress(f"{server.label}: overload {scen}/{transport}: {low}/s for {lead:g} s, {high}/s for {hot:g} s, {low}/s for {tail:g} s")
        cpu0 = cpu_seconds(server.pids())
        with (MetricsScraper(url) if url else contextlib.nullcontext()) as scraper:
            threads = [threading.Thread(target=run_phase, args=p) for p in phases]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        cpu_s = cpu_seconds(server.pids()) - cpu0
        end_progress()
        end = lead + hot + tail
        timeline = overload_timeline(t0, end, phases, got, scraper.samples if scraper else [])
        table_rows = []
        for name, rate, start, dur in phases:
            r = got.get(name) or {"ok": 0, "failed": 0, "unexpected": 0, "timed": []}
            times = sorted(ms for _, ms in r["timed"])
            table_rows.append({"phase": name, "offered": rate, "seconds": dur, "calls": int(rate * dur), "completed_per_s": round(r["ok"] / dur, 1),
                               "refused_503_per_s": round(r["unexpected"] / dur, 1), "other_failures": r["failed"] - r["unexpected"],
                               "p50_ms": percentile(times, 0.5), "p99_ms": percentile(times, 0.99)})
        hot_row = table_rows[1]
        # Issue 20: at 2 ×, at least 90 % of the sustained rate completes within the p99 bound.
        holds = hot_row["completed_per_s"] >= MIN_ACHIEVED * sustained and hot_row["p99_ms"] <= MAX_P99_MS
        recovered = recovery_seconds(timeline, lead + hot, end)
        row = {"kind": "overload", "server": server.label, "scenario": scen, "transport": transport, "sustained": sustained,
               "phases": table_rows, "holds": holds, "recovered_after_s": recovered, "server_cpu_pct": round(100.0 * cpu_s / end, 1),
               "timeline": timeline}
        if scraper and scraper.samples:
            first, last = scraper.samples[0][1], scraper.samples[-1][1]
            row["server_shed"] = {c: last.get(f'simple_presence_sip_overload_shed_total{{class="{c}"}}', 0) - first.get(f'simple_presence_sip_overload_shed_total{{class="{c}"}}', 0)
                                  for c in ("new", "ongoing")}
        for t in table_rows:
            log(f"  {server.label:16} overload {scen}/{transport} {t['phase']:6} offered {t['offered']:6d}/s -> completed {t['completed_per_s']:7.0f}/s  "
                f"503 {t['refused_503_per_s']:7.0f}/s  other failures {t['other_failures']:5d}  p99 {fmt(t['p99_ms'], '5.0f')} ms")
        log(f"  {server.label:16} overload: 2 × holds {hot_row['completed_per_s'] / sustained * 100:.0f} % of the sustained {sustained}/s "
            f"within p99 {fmt(hot_row['p99_ms'], '.0f')} ms: {'yes' if holds else 'NO'}; back to normal "
            f"{'after ' + str(recovered) + ' s' if recovered is not None else 'not within the run'}")
        time.sleep(1)
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

    def memory(self, server, n):
        """Memory of one of our servers (issue 15): idle 10 s after a fresh start (`npm start` on a
        new data directory: VmRSS and PSS, no GC asked for), then holding `n` subscriptions, then `n`
        publications as well (bench/swarm.py held: every watcher's presentity publishes; settled
        after a full GC, like the held row), and the start-up on the data directory it then holds
        (process start to the first OPTIONS answered: store opened, soft state loaded)."""
        self.focus(server)
        server.stop()
        server.start()
        time.sleep(10)
        pids = server.pids()
        row = {"kind": "memory", "server": server.label, "store": server.store, "held": n, "fresh_start_s": round(server.start_s, 2),
               "idle_rss_mb": round(rss_kb(pids) / 1024, 1), "idle_pss_mb": round(pss_kb(pids) / 1024, 1)}
        self.run_no += 1
        cmd = [sys.executable, os.path.join(HERE, "swarm.py"), "held", f"{HOST}:{server.port}", "--watchers", str(n), "--run", f"{os.getpid()}m{self.run_no}"]
        progress(f"{server.label}: memory with {n} subscriptions and publications")
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for line in p.stdout:
            if line.startswith("SUBSCRIBED "):
                row["subscriptions"] = json.loads(line[len("SUBSCRIBED "):])["accepted"]
                # The SUBSCRIBEs' server transactions over UDP stay Completed for Timer J
                # (64 × T1 = 32 s, RFC 3261 §17.2.2): held state is read once they are gone.
                time.sleep(UDP_TRANSACTIONS_GONE_S)
                server.collect_garbage()
                row["subscribed_pss_mb"] = round(settled_pss_kb(pids, 15.0) / 1024, 1)
                row["subscribed_rss_mb"] = round(rss_kb(pids) / 1024, 1)
                p.stdin.write("go\n")
                p.stdin.flush()
            elif line.startswith("PROGRESS "):
                progress(f"{server.label}: memory: {line[9:].strip()}")
            elif line.startswith("RESULT "):
                row["publications"] = json.loads(line[len("RESULT "):]).get("change_notified")
        p.wait()
        end_progress()
        time.sleep(UDP_TRANSACTIONS_GONE_S)
        server.collect_garbage()
        row["held_pss_mb"] = round(settled_pss_kb(pids, 15.0) / 1024, 1)
        row["held_rss_mb"] = round(rss_kb(pids) / 1024, 1)
        if row.get("subscriptions"):
            row["bytes_per_subscription"] = round((row["subscribed_pss_mb"] - row["idle_pss_mb"]) * 1024 * 1024 / row["subscriptions"])
        # A graceful stop flushes the soft state; the next start loads it back. Timed to its
        # "listening" log line, not to an OPTIONS answer: right after it the server sends every
        # subscription's NOTIFY (to a swarm that is gone), and that load is not the start-up's.
        server.stop(keep_data=True)
        server.start(keep_data=True, wait=False)
        row["restart_s"] = listening_after(server, 180)
        time.sleep(10)
        row["restarted_rss_mb"] = round(rss_kb(server.pids()) / 1024, 1)
        server.stop()
        server.start()
        log(f"  {server.label:30} idle {row['idle_rss_mb']:.0f} MB RSS ({row['idle_pss_mb']:.0f} PSS); {row.get('subscriptions')} subscriptions "
            f"{row.get('subscribed_rss_mb')} MB RSS; + {row.get('publications')} publications {row['held_rss_mb']:.0f} MB RSS "
            f"({row['held_pss_mb']:.0f} PSS); start-up {row['fresh_start_s']} s fresh, {row.get('restart_s')} s on that data "
            f"({row['restarted_rss_mb']:.0f} MB RSS after)")
        return row

    def swarm(self, server, mode, n, while_held=None):
        """fan-out / held state: the watcher swarm (bench/swarm.py) against one server.
        `while_held(accepted)` runs once the subscriptions are held (and measured), before they change."""
        self.focus(server)
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
        aside_cpu = aside_wall = 0.0
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
                    if while_held:
                        # Not the swarm's: its CPU and time stay out of the held row.
                        c, w = cpu_seconds(pids), time.time()
                        while_held(accepted)
                        aside_cpu += cpu_seconds(pids) - c
                        aside_wall += time.time() - w
                    progress(f"{server.label}: {mode}: {accepted} subscriptions held, all presentities change now")
                    p.stdin.write("go\n")
                    p.stdin.flush()
                elif line.startswith("PROGRESS "):
                    progress(f"{server.label}: {mode}: {line[9:].strip()}")
                elif line.startswith("RESULT "):
                    out.update(json.loads(line[len("RESULT "):]))
            _, status, ru = os.wait4(p.pid, 0)
        wall = time.time() - t0 - aside_wall
        end_progress()
        row = dict(out, server=server.label, scenario=mode, transport="udp", kind=mode,
                   server_cpu_pct=round(100.0 * (cpu_seconds(pids) - cpu0 - aside_cpu) / wall, 1), server_peak_mb=round(mem.peak / 1024, 1),
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


# ---------------------------------------------------------------- overload time series

def overload_timeline(t0, end, phases, got, samples):
    """One row a second from the start of the overload run: offered, completed and refused
    calls (SIPp's per-second counters), p99 of the answers in that second, and the most
    /metrics showed in it (event-loop lag, receive delay, level; 503s from the shed counter)."""
    n = int(end) + 3
    rows = [{"t": i, "offered": 0, "completed": 0, "refused_503": 0, "rtts": []} for i in range(n)]
    sec = lambda t: int(t - t0)
    for name, rate, start, dur in phases:
        for i in range(int(start), min(n, int(start + dur))):
            rows[i]["offered"] += rate
        r = got.get(name)
        if not r:
            continue
        before = (None, 0, 0, 0)
        for point in r["series"]:
            i = sec(point[0])
            if 0 <= i < n and before[0] is not None:
                rows[i]["completed"] += point[1] - before[1]
                rows[i]["refused_503"] += point[3] - before[3]
            before = point
        for t, ms in r["timed"]:
            i = sec(t)
            if 0 <= i < n:
                rows[i]["rtts"].append(ms)
    last_shed = None
    for t, m in samples:
        i = sec(t)
        if not 0 <= i < n:
            continue
        row = rows[i]
        for key, series, scale in (("event_loop_lag_ms", "simple_presence_event_loop_lag_seconds", 1000), ("receive_delay_ms", "simple_presence_receive_delay_seconds", 1000),
                                   ("cpu_wait_ms", "simple_presence_cpu_wait_seconds", 1000), ("level", "simple_presence_overload_level", 1)):
            if series in m:
                row[key] = max(row.get(key, 0), round(m[series] * scale, 2))
        shed = sum(v for k, v in m.items() if k.startswith("simple_presence_sip_overload_shed_total"))
        if last_shed is not None:
            row["server_503"] = row.get("server_503", 0) + shed - last_shed
        last_shed = shed
    for row in rows:
        rtts = sorted(row.pop("rtts"))
        row["p99_ms"] = percentile(rtts, 0.99) if rtts else None
    return rows


def recovery_seconds(timeline, drop, end):
    """Seconds after the load dropped until every later second had no 503 and its p99 within the bound."""
    for s in range(int(drop), int(end)):
        later = timeline[s:int(end)]
        if all(r["refused_503"] == 0 and (r["p99_ms"] is None or r["p99_ms"] < MAX_P99_MS) for r in later):
            return s - int(drop)
    return None


# ---------------------------------------------------------------- report

def fmt(v, spec):
    return "—" if v is None or v != v else format(v, spec)


def kind_of(server):
    """"kamailio", or "ours" (our single process, or a cluster of bench/cluster_bench.py)."""
    return getattr(server, "kind", "ours")


def kamailio_label(servers):
    return next((s.label for s in servers if kind_of(s) == "kamailio"), None)


def memory_table(results):
    """Scenario memory: one row a server (store), the issue's figures."""
    rows = [r for r in results if r["kind"] == "memory"]
    if not rows:
        return ""
    f = lambda v, spec=".0f": "—" if v is None else format(v, spec)
    lines = ["| store | idle RSS (PSS) MB | + subscriptions: RSS MB | + as many publications: RSS (PSS) MB | B/subscription | start-up fresh / on that data |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        name = {"sqlite": "SQLite (embedded, the default)", "postgres": "PostgreSQL", "off": "store off"}.get(r["store"], r["store"])
        lines.append(f"| {name} | {f(r['idle_rss_mb'])} ({f(r['idle_pss_mb'])}) | {r.get('subscriptions')}: {f(r.get('subscribed_rss_mb'))} | "
                     f"{r.get('publications')}: {f(r.get('held_rss_mb'))} ({f(r.get('held_pss_mb'))}) | {f(r.get('bytes_per_subscription'))} | "
                     f"{f(r['fresh_start_s'], '.2f')} s / {f(r.get('restart_s'), '.2f')} s |")
    return "\n".join(lines)


def table(results, servers):
    """Sustained rates, fan-out and held state: one row a server, ours against Kamailio's."""
    theirs = kamailio_label(servers)
    results = [r for r in results if r["kind"] in ("rate", "fanout", "held")]
    if not results:
        return ""
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
            if theirs and s.label != theirs:
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


def fixed_table(results, servers):
    """CPU per call at one fixed rate, ours beside Kamailio's."""
    rows = [r for r in results if r["kind"] == "fixed"]
    if not rows:
        return ""
    theirs = kamailio_label(servers)
    by = {(r["server"], r["scenario"], r["transport"]): r for r in rows}
    head = "| scenario | transport | server | offered/s | achieved/s | failures | of which 503 | server CPU | CPU µs/call | p99 ms |" + (" µs/call ours/theirs |" if theirs else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ratio = ""
        if theirs:
            t = by.get((theirs, r["scenario"], r["transport"]))
            a, b = r.get("server_cpu_us_per_call"), t and t.get("server_cpu_us_per_call")
            ratio = (f" {a / b:.2f}× |" if a and b else " — |") if r["server"] != theirs else " |"
        lines.append(f"| {r['scenario']} | {r['transport']} | {r['server']} | {r['offered']} | {r['achieved']:.0f} | {r['failed_pct']:.2f}% | {r.get('refused_503', 0)} | "
                     f"{r['server_cpu_pct']:.0f}% | {fmt(r.get('server_cpu_us_per_call'), '.0f')} | {fmt(r['p99_ms'], '.0f')} |{ratio}")
    return "\n".join(lines)


def latency_table(results):
    """p99 at half the sustained rate, after heavy load and with many subscriptions held."""
    rows = [r for r in results if r["kind"] == "latency"]
    if not rows:
        return ""
    lines = [f"| condition | scenario | server | offered/s (half sustained) | achieved/s | failures | p50 ms | p99 ms | p99 < {STEADY_P99_MS:.0f} ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['condition']} | {r['scenario']} | {r['server']} | {r['offered']} | {r['achieved']:.0f} | {r['failed_pct']:.2f}% | "
                     f"{fmt(r['p50_ms'], '.0f')} | {fmt(r['p99_ms'], '.0f')} | {'yes' if r['steady'] else 'no'} |")
    return "\n".join(lines)


def overload_table(results):
    rows = [r for r in results if r["kind"] == "overload"]
    lines = []
    for r in rows:
        if lines:
            lines.append("")
        lines.append(f"Overload, {r['server']}, {r['scenario']}/{r['transport']}, sustained {r['sustained']}/s:")
        lines.append("")
        lines.append("| phase | seconds | offered/s | completed/s | 503/s | other failures | p50 ms | p99 ms |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for p in r["phases"]:
            lines.append(f"| {p['phase']} | {p['seconds']:g} | {p['offered']} | {p['completed_per_s']:.0f} | {p['refused_503_per_s']:.0f} | {p['other_failures']} | "
                         f"{fmt(p['p50_ms'], '.0f')} | {fmt(p['p99_ms'], '.0f')} |")
        hot = r["phases"][1]
        lines.append("")
        lines.append(f"At 2 ×: {hot['completed_per_s'] / r['sustained'] * 100:.0f} % of the sustained rate completed, p99 {fmt(hot['p99_ms'], '.0f')} ms "
                     f"(target: ≥ {MIN_ACHIEVED * 100:.0f} % within {MAX_P99_MS:.0f} ms): {'met' if r['holds'] else 'NOT met'}. "
                     + (f"Back to normal (no 503, p99 < {MAX_P99_MS:.0f} ms) {r['recovered_after_s']} s after the load dropped."
                        if r["recovered_after_s"] is not None else "Not back to normal before the run ended.")
                     + (f" Server-side 503s: {r['server_shed']['new']:.0f} new, {r['server_shed']['ongoing']:.0f} in dialogs." if r.get("server_shed") else ""))
    return "\n".join(lines)


def store_table(results, servers):
    """Each store's figures against the store off (issue 20: within 10 %)."""
    ours = [s for s in servers if kind_of(s) == "ours"]
    off = next((s.label for s in ours if getattr(s, "store", None) == "off"), None)
    if not off or len(ours) < 2:
        return ""
    metrics = []
    for r in results:
        if r["kind"] == "rate":
            metrics.append((r, f"{r['scenario']}/{r['transport']} sustained calls/s", r["sustained"], True))
        elif r["kind"] == "fixed":
            metrics.append((r, f"{r['scenario']}/{r['transport']} CPU µs/call at {r['offered']}/s", r.get("server_cpu_us_per_call"), False))
        elif r["kind"] == "latency":
            metrics.append((r, f"{r['scenario']} {r['condition']}: p99 ms", r["p99_ms"], False))
    base = {(name): v for r, name, v, _ in metrics if r["server"] == off}
    lines = ["| figure | store | value | store off | ratio | within 10 % (p99: or 5 ms) |", "|---|---|---|---|---|---|"]
    for r, name, v, higher_better in metrics:
        if r["server"] == off or r["server"] not in [s.label for s in ours] or name not in base:
            continue
        b = base[name]
        if not v or not b or v != v or b != b:
            lines.append(f"| {name} | {r['server']} | {fmt(v, '.0f')} | {fmt(b, '.0f')} | — | — |")
            continue
        ratio = v / b
        # A p99 of a few ms moves by more than 10 % with nothing changed: 5 ms either way is within too.
        ok = ratio >= 0.9 if higher_better else (ratio <= 1.1 or ("p99" in name and v - b <= 5))
        lines.append(f"| {name} | {r['server']} | {v:.0f} | {b:.0f} | {ratio:.2f} | {'yes' if ok else 'no'} |")
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


# ---------------------------------------------------------------- charts

def server_style(servers):
    """The same colour and dash for a server in every chart: ours solid, Kamailio dashed."""
    style, n = {}, 0
    for s in servers:
        if kind_of(s) == "kamailio":
            style[s.label] = {"colour": 1, "dash": "dashed"}
        else:
            style[s.label] = {"colour": [0, 2, 3, 4][n % 4], "dash": "solid"}
            n += 1
    return style


def draw_charts(prefix, results, steps, servers, command):
    """SVG files beside the results: per scenario the rate search (completed and p99 against the
    offered rate), the overload run over time, CPU per call and the p99s at half rate."""
    style = server_style(servers)
    made = []
    for scen_tr in dict.fromkeys((st["scenario"], st["transport"]) for st in steps):
        scen, tr = scen_tr
        done, p99 = [], []
        for st in steps:
            if (st["scenario"], st["transport"]) != scen_tr:
                continue
            pts = sorted(st["steps"], key=lambda x: x["offered"])
            sty = style.get(st["server"], {})
            done.append({"label": st["server"], "points": [(x["offered"], x["achieved"]) for x in pts], **sty})
            p99.append({"label": st["server"], "points": [(x["offered"], x["p99_ms"]) for x in pts], **sty})
        offered = sorted({x for d in done for x, _ in d["points"]})
        done.append({"label": "offered (all completed)", "points": [(x, x) for x in offered], "colour": 6, "dash": "dotted"})
        path = f"{prefix}-rate-{scen}-{tr}.svg"
        charts.chart(path, f"{scen} over {tr.upper()}: offered rate against completed rate and p99", "offered calls/s",
                     [{"ylabel": "completed calls/s", "series": done},
                      {"ylabel": "p99 response time, ms (log)", "log": True, "series": p99, "hlines": [(MAX_P99_MS, f"{MAX_P99_MS:.0f} ms: a step holds below")]}],
                     subtitle=command)
        made.append(path)
    for r in results:
        if r["kind"] != "overload":
            continue
        tl = r["timeline"]
        lead, hot = r["phases"][0]["seconds"], r["phases"][1]["seconds"]
        shade = [(lead, lead + hot, f"offered 2 × the sustained {r['sustained']}/s")]
        xs = [row["t"] for row in tl]
        refused = "server_503" if any("server_503" in row for row in tl) else "refused_503"
        panels = [
            {"ylabel": "calls/s", "shade": shade, "series": [
                {"label": "offered", "points": [(x, row["offered"]) for x, row in zip(xs, tl)], "colour": 6, "dash": "dotted"},
                {"label": "completed", "points": [(x, row["completed"]) for x, row in zip(xs, tl)], "colour": 0},
                {"label": "answered 503", "points": [(x, row.get(refused, 0)) for x, row in zip(xs, tl)], "colour": 1}]},
            {"ylabel": "p99 response time, ms (log)", "log": True, "shade": shade, "hlines": [(MAX_P99_MS, f"{MAX_P99_MS:.0f} ms")], "series": [
                {"label": "p99 of completed calls", "points": [(x, row["p99_ms"]) for x, row in zip(xs, tl)], "colour": 2}]},
        ]
        if any("event_loop_lag_ms" in row for row in tl):
            panels.append({"ylabel": "ms (highest in the second)", "shade": shade, "series": [
                {"label": "event-loop lag", "points": [(x, row.get("event_loop_lag_ms")) for x, row in zip(xs, tl)], "colour": 3},
                {"label": "receive delay (lag + UDP queue)", "points": [(x, row.get("receive_delay_ms")) for x, row in zip(xs, tl)], "colour": 4},
                {"label": "SIP thread waiting for a CPU (a window)", "points": [(x, row.get("cpu_wait_ms")) for x, row in zip(xs, tl)], "colour": 6, "dash": "dashed"}]})
            panels.append({"ylabel": "overload level (0-2)", "shade": shade, "series": [
                {"label": "overload level", "points": [(x, row.get("level")) for x, row in zip(xs, tl)], "colour": 5}]})
        path = f"{prefix}-overload-{r['scenario']}-{r['transport']}.svg"
        charts.chart(path, f"Overload: {r['scenario']} over {r['transport'].upper()}, {r['server']}", "seconds", panels,
                     subtitle=f"{r['sustained'] // 2}/s, then {2 * r['sustained']}/s for {hot:g} s, then {r['sustained'] // 2}/s; {command}")
        made.append(path)
    fixed = [r for r in results if r["kind"] == "fixed"]
    if fixed:
        made.append(bars_by_server(f"{prefix}-cpu-per-call.svg", f"Server CPU per call at a fixed {fixed[0]['offered']} calls/s", "scenario / transport",
                                   "CPU µs per call", fixed, lambda r: f"{r['scenario']}/{r['transport']}", lambda r: r.get("server_cpu_us_per_call"),
                                   servers, style, command))
    lat = [r for r in results if r["kind"] == "latency"]
    if lat:
        made.append(bars_by_server(f"{prefix}-latency.svg", "p99 at half the sustained rate, after heavy load", "scenario, condition", "p99 ms",
                                   lat, lambda r: f"{r['scenario']} {r['condition']}", lambda r: r["p99_ms"], servers, style, command,
                                   [(STEADY_P99_MS, f"{STEADY_P99_MS:.0f} ms target")]))
    return made


def bars_by_server(path, title, xlabel, ylabel, rows, category, value, servers, style, command, hlines=()):
    """A bar chart: a group of bars per category, a bar per server."""
    cats = list(dict.fromkeys(category(r) for r in rows))
    series = []
    for s in servers:
        pts = [(cats.index(category(r)), value(r)) for r in rows if r["server"] == s.label]
        if pts:
            series.append({"label": s.label, "points": pts, "bars": True, **style[s.label]})
    return charts.chart(path, title, xlabel, [{"ylabel": ylabel, "series": series, "categories": dict(enumerate(cats)), "hlines": list(hlines)}],
                        subtitle=command)


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
    ap.add_argument("--quick", action="store_true", help="smaller counts and shorter steps (a few minutes)")
    ap.add_argument("--vs", choices=["kamailio"], help="run the same scenarios against Kamailio too")
    ap.add_argument("--transports", help="udp,tcp (default: both; --quick: udp)")
    ap.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS), help=f"any of {','.join(ALL_SCENARIOS)} (default: all but connections)")
    ap.add_argument("--rates", help="offered rates to step through, e.g. 1000,2000,4000")
    ap.add_argument("--seconds", type=float, help="length of a rate step (default 3, --quick 2)")
    ap.add_argument("--watchers", type=int, help="fan-out watchers (default 10000, --quick 2000)")
    ap.add_argument("--held", type=int, help="held-state subscriptions (default 100000, --quick 10000)")
    ap.add_argument("--connections", type=int, help="held connections, TCP/TLS/WebSocket mixed (scenario connections; default 100000, --quick 3000)")
    ap.add_argument("--connection-transports", default="tcp,tls,ws", help="the transports the held connections take turns on (scenario connections)")
    ap.add_argument("--pool", type=int, default=2000, help="registered users MESSAGE goes to")
    ap.add_argument("--fixed-rate", type=int, default=2000, help="the rate of the CPU-per-call runs (scenario cpu)")
    ap.add_argument("--fixed-seconds", type=float, help="length of a CPU-per-call run (default 4, --quick 2)")
    ap.add_argument("--overload", default="publish/udp", help="SCENARIO/TRANSPORT[,...] the overload run drives (default publish/udp)")
    ap.add_argument("--overload-seconds", type=float, help="how long 2 × the sustained rate is offered (default 30, --quick 10)")
    ap.add_argument("--sustained", help="SCENARIO/TRANSPORT=RATE[,...]: sustained rates taken as given (from an earlier run) by overload, after and held instead of searching them")
    ap.add_argument("--after", type=int, help="PUBLISH calls (new publications) before the after-load latency steps (default 100000, --quick 10000)")
    ap.add_argument("--port", type=int, default=0, help="our server's SIP port (default: a free one; with several stores, the first's)")
    ap.add_argument("--store", default="sqlite",
                    help="our server's store, or several (comma-separated: each a server of its own, compared with off): embedded SQLite in a "
                         "fresh data directory (default), postgres (DATABASE_URL or the local server, a fresh schema), or off (memory only)")
    ap.add_argument("--no-build", dest="build", action="store_false")
    ap.add_argument("--no-isolate", dest="isolate", action="store_false",
                    help="leave every server running while another is measured (default: the others are frozen with SIGSTOP)")
    ap.add_argument("--json", help="results file (default bench/results/<date>.json; the charts go beside it)")
    cluster_bench.add_arguments(ap)
    a = ap.parse_args()
    mode = "quick" if a.quick else "full"
    a.refine = not a.rates  # rates given by hand are stepped through exactly
    a.rates = [int(x) for x in a.rates.split(",")] if a.rates else STEP_RATES[mode]
    a.seconds = a.seconds or (2.0 if a.quick else 3.0)
    a.watchers = a.watchers or (2000 if a.quick else 10000)
    a.held = a.held or (10000 if a.quick else 100000)
    a.fixed_seconds = a.fixed_seconds or (2.0 if a.quick else 4.0)
    a.overload_seconds = a.overload_seconds or (10.0 if a.quick else 30.0)
    a.overload_lead, a.overload_tail = (3.0, 8.0) if a.quick else (5.0, 15.0)
    a.after = a.after or (10000 if a.quick else 100000)
    a.connections = a.connections or (3000 if a.quick else 100000)
    transports = (a.transports or ("udp" if a.quick else "udp,tcp")).split(",")
    scenarios = a.scenarios.split(",")
    for scen in scenarios:
        if scen not in ALL_SCENARIOS:
            sys.exit(f"unknown scenario {scen} (known: {', '.join(ALL_SCENARIOS)})")
    stores = a.store.split(",")
    for store in stores:
        if store not in ("sqlite", "postgres", "off"):
            sys.exit(f"unknown store {store} (sqlite, postgres or off)")
    overloads = [tuple(x.split("/")) for x in a.overload.split(",")]
    for o in overloads:
        if len(o) != 2 or o[0] not in ("publish", "subscribe", "message") or o[1] not in ("udp", "tcp"):
            sys.exit(f"--overload {'/'.join(o)}: SCENARIO/TRANSPORT with publish, subscribe or message and udp or tcp")

    given = {}
    for item in (a.sustained.split(",") if a.sustained else []):
        key, _, rate = item.partition("=")
        scen_tr = tuple(key.split("/"))
        if len(scen_tr) != 2 or not rate.isdigit():
            sys.exit(f"--sustained {item}: SCENARIO/TRANSPORT=RATE, e.g. publish/udp=2500")
        given[scen_tr] = int(rate)

    results = []
    started = time.time()
    if "connections" in scenarios:
        # bench/connections.ts starts its own servers (with --workers, a cluster of its own).
        scenarios = [x for x in scenarios if x != "connections"]
        results.append(held_connections(a))
        if not scenarios:
            write_connections_only(a, results, started)
            return

    ensure_apt("sipp", ["sip-tester"])
    workdir = tempfile.mkdtemp(prefix="simple-presence-bench-")
    servers = cluster_bench.servers(a, workdir, free_port, options_ping) or [
        OurServer((a.port if i == 0 and a.port else free_port()), workdir, a.build, store) for i, store in enumerate(stores)]
    if a.vs == "kamailio":
        servers.append(Kamailio(free_port(), workdir))
    ours = [s for s in servers if kind_of(s) == "ours"]
    bench = Bench(a, workdir, servers)
    for s in servers:
        for (scen, tr), rate in given.items():
            bench.sustained_rates[(s.label, scen, tr)] = rate
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
            elif scen == "cpu":
                for fs in ("publish", "subscribe", "message"):
                    for tr in transports:
                        bench.settle()
                        for s in servers:
                            if fs == "message":
                                bench.prepare_message(s)
                            results.append(bench.fixed(s, fs, tr))
            elif scen == "overload":
                for os_, tr in overloads:
                    for s in ours:  # Kamailio has no overload control to show
                        row = bench.overload(s, os_, tr, results)
                        if row:
                            results.append(row)
            elif scen == "after":
                for s in servers:
                    results.extend(bench.after_load(s, results))
            elif scen == "fanout":
                for s in servers:
                    results.append(bench.swarm(s, "fanout", a.watchers))
            elif scen == "memory":
                for s in ours:
                    results.append(bench.memory(s, a.held))
            elif scen == "held":
                # The half-rate steps while held need the sustained rates: searched first, not while held.
                for s in servers:
                    for hs in ("subscribe", "message"):
                        bench.sustained(s, hs, "udp", results)
                # From a fresh start, so the memory growth is the subscriptions' alone; warmed up
                # (a few garbage collections behind it), or start-up garbage freed during the
                # run would count against the subscriptions.
                for s in servers:
                    s.stop()
                    s.start()
                    bench.warm_up(s, "t1")
                for s in servers:
                    # Named by the subscriptions asked for, the same for every server (the row says how many were accepted).
                    held = lambda accepted, s=s: results.extend(dict(r, held=accepted) for r in bench.half_rate(s, f"{a.held // 1000}k subscriptions held", results))
                    results.append(bench.swarm(s, "held", a.held, held))
    finally:
        bench.release()
        for s in servers:
            s.stop()
        if bench.uas is not None:
            bench.uas.terminate()
            bench.uas.wait(10)
    elapsed = time.time() - started
    date = datetime.datetime.now().astimezone()
    info = machine()
    command = "npm run bench" + (" --" if len(sys.argv) > 1 else "") + "".join(f" {x}" for x in sys.argv[1:])
    out = a.json or os.path.join(HERE, "results", f"{date:%Y-%m-%dT%H-%M-%S}.json")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    steps = [r for r in bench.rows if r["kind"] == "steps"]
    made = draw_charts(os.path.splitext(out)[0], results, steps, servers, f"{date:%Y-%m-%d}, `{command}`")
    log("")
    log(f"{date:%Y-%m-%d %H:%M %Z}, {info['cpu']} ({info['cores']} cores), node {''.join(info['node'])}; `{command}`; {elapsed:.0f} s")
    for part in (table(results, servers), fixed_table(results, servers), latency_table(results), overload_table(results), store_table(results, servers), memory_table(results)):
        if part:
            log("")
            log(part)
    with open(out, "w") as f:
        json.dump({"date": date.isoformat(), "command": command, "mode": mode, "machine": info, "elapsed_s": round(elapsed, 1),
                   "criteria": {"max_failed_pct": MAX_FAIL_PCT, "max_p99_ms": MAX_P99_MS, "min_achieved_of_offered": MIN_ACHIEVED, "steady_p99_ms": STEADY_P99_MS},
                   "results": results, "steps": bench.rows, "charts": [os.path.basename(m) for m in made]}, f, indent=1)
    log("")
    log(f"# results: {os.path.relpath(out, ROOT)}")
    for m in made:
        log(f"# chart: {os.path.relpath(m, ROOT)}")
    if os.environ.get("BENCH_KEEP_WORKDIR"):
        log(f"# kept: {workdir} (server logs, data directories)")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def held_connections(a):
    """Scenario connections: bench/connections.ts (docs/performance.md, "Held connections"); its
    summary printed, its report a row of the results."""
    OurServer(0, None, a.build, "off").prepare()
    workers = a.workers or 1
    out = tempfile.mktemp(prefix="held-connections-", suffix=".json")
    cmd = ["node", os.path.join(ROOT, "dist", "bench", "connections.js"), "--connections", str(a.connections), "--workers", str(workers),
           "--transports", a.connection_transports, "--json", out]
    if a.quick:
        cmd += ["--hold", "10", "--probe-seconds", "5"]
    log(f"# held connections: {' '.join(cmd[1:])}")
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode != 0 or not os.path.exists(out):
        sys.exit("the held-connections bench failed")
    with open(out) as f:
        row = dict(json.load(f), kind="connections")
    os.unlink(out)
    return row


def write_connections_only(a, results, started):
    date = datetime.datetime.now().astimezone()
    command = "npm run bench" + (" --" if len(sys.argv) > 1 else "") + "".join(f" {x}" for x in sys.argv[1:])
    out = a.json or os.path.join(HERE, "results", f"{date:%Y-%m-%dT%H-%M-%S}.json")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump({"date": date.isoformat(), "command": command, "machine": machine(), "elapsed_s": round(time.time() - started, 1), "results": results}, f, indent=1)
    log(f"# results: {os.path.relpath(out, ROOT)}")


if __name__ == "__main__":
    main()
