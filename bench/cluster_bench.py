"""Cluster servers for `npm run bench` (docs/cluster.md): `--workers N` and `--nodes N`.

  npm run bench -- --workers 2 --scenarios publish,subscribe
      `serve --workers 2` against `serve --workers 1`, in the same run, one after the other on
      the same scenarios: the table's ratio column is workers N over workers 1.
  npm run bench -- --nodes 3 --scenarios fanout
      a loopback cluster of 3 node processes: SIPp (and the fan-out watchers) talk to node 2,
      the fan-out PUBLISH goes to node 1, so every NOTIFY crosses nodes; against one node alone.

Each cluster gets a nats-server with JetStream of its own (a fresh store directory) and a
PostgreSQL schema of its own (DATABASE_URL, or the local server), both gone at its stop.
Server CPU sums every process of the service: the nodes (workers) and nats-server.
SIPp runs with one socket (UDP) or connection (TCP) per call (`-t un`/`tn`), or the kernel
would keep all its traffic on one worker (SO_REUSEPORT spreads by source address and port).
run-bench.py calls add_arguments() and servers(); nothing else here is its business.
"""
import os, shutil, signal, subprocess, sys, tempfile, time, urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def server_node_flags():
    """The V8 options the server runs with in production (config/node-flags, as bin/simple-presence
    and npm start give them), then BENCH_NODE_FLAGS (later options win)."""
    with open(os.path.join(ROOT, "config", "node-flags")) as f:
        return f.read().split() + os.environ.get("BENCH_NODE_FLAGS", "").split()
HOST = "127.0.0.1"


def add_arguments(ap):
    ap.add_argument("--workers", type=int, help="compare `serve --workers N` with `--workers 1` (a cluster on its own nats-server and PostgreSQL schema)")
    ap.add_argument("--nodes", type=int, help="a loopback cluster of N node processes against one node: NOTIFYs across nodes (fan-out)")


def servers(a, workdir, free_port, options_ping):
    """The servers to bench for --workers / --nodes, or None for the usual ones."""
    if a.workers:
        return [ClusterServer(workdir, free_port, options_ping, a.build, f"simple-presence --workers {a.workers}", workers=a.workers),
                ClusterServer(workdir, free_port, options_ping, a.build, "simple-presence --workers 1", workers=1)]
    if a.nodes:
        return [ClusterServer(workdir, free_port, options_ping, a.build, f"simple-presence, {a.nodes} nodes", nodes=a.nodes),
                ClusterServer(workdir, free_port, options_ping, a.build, "simple-presence, 1 node", nodes=1)]
    return None


def nats_binary():
    for p in (os.environ.get("NATS_SERVER"), shutil.which("nats-server"), "/usr/sbin/nats-server"):
        if p and os.path.exists(p):
            return p
    sys.exit("no nats-server: apt-get install -y nats-server (npm test installs it: test/support/ensure-tools.mjs)")


def psql(url, sql):
    r = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", sql], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"psql failed ({sql}): {r.stderr.strip()}")


class ClusterServer:
    """`serve --workers N` on one port, or N node processes on ports of their own."""

    def __init__(self, workdir, free_port, options_ping, build, label, workers=1, nodes=1):
        self.workdir, self.free_port, self.options_ping, self.build = workdir, free_port, options_ping, build
        self.label, self.workers, self.nodes = label, workers, nodes
        self.ports = [free_port() for _ in range(nodes)]
        # Watchers and SIPp talk to the last node; the fan-out PUBLISH goes to the first.
        self.port = self.ports[-1]
        self.swarm_args = ["--publish-to", f"{HOST}:{self.ports[0]}"] if nodes > 1 else []
        self.sipp_transport = {"udp": "un", "tcp": "tn"}
        # A socket per call, within the process's open-file limit.
        self.sipp_args = ["-max_socket", "15000"]
        self.procs, self.nats, self.schema, self.url = [], None, None, None

    def prepare(self):
        main = os.path.join(ROOT, "dist", "src", "cli", "main.js")
        if self.build and subprocess.run(["npm", "run", "build", "--silent"], cwd=ROOT, capture_output=True).returncode != 0 and not os.path.exists(main):
            sys.exit("build failed")

    def start(self):
        store = tempfile.mkdtemp(dir=self.workdir, prefix="nats-")
        nats_port = self.free_port()
        self.natslog = open(os.path.join(self.workdir, "nats.log"), "a")
        self.nats = subprocess.Popen([nats_binary(), "-js", "-sd", store, "-a", HOST, "-p", str(nats_port)], stdout=self.natslog, stderr=subprocess.STDOUT)
        time.sleep(0.5)
        url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
        self.schema = f"sp_bench_cluster_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
        psql(url, f"CREATE SCHEMA {self.schema}")
        self.url = url
        db = url + ("&" if "?" in url else "?") + "options=" + urllib.parse.quote(f"-c search_path={self.schema}")
        self.logf = open(os.path.join(self.workdir, "cluster.log"), "a")
        for i, port in enumerate(self.ports):
            env = dict(os.environ, SIP_HOST=HOST, SIP_PORT=str(port), HTTP_PORT=str(self.free_port()), SIP_TLS_PORT=str(self.free_port()),
                       AUTH_REQUIRED="false", LOG_LEVEL="warn", NATS_URL=f"nats://{HOST}:{nats_port}", DATABASE_URL=db,
                       NODE_NAME=f"bench{i + 1}", DATA_DIR=tempfile.mkdtemp(dir=self.workdir, prefix="data-"), WORKERS=str(self.workers))
            cmd = ["node", *server_node_flags(), os.path.join(ROOT, "dist", "src", "cli", "main.js"), "serve",
                   "--config", os.path.join(HERE, "server-config.json")]
            self.procs.append(subprocess.Popen([c for c in cmd if c], cwd=ROOT, env=env, stdout=self.logf, stderr=subprocess.STDOUT))
        for port in self.ports:
            if not self.options_ping(port, 90):
                self.stop()
                sys.exit(f"{self.label} did not answer OPTIONS on udp:{HOST}:{port}; log: {self.logf.name}")
        # Every worker up (OPTIONS may have reached one of them only).
        time.sleep(2 if self.workers > 1 else 0.5)
        # The harness warms up the node it drives; the others get the same (a cold node's first
        # PUBLISH, JIT and all, would weigh on a fan-out's time).
        for port in self.ports[:-1]:
            for scen in ("publish.xml", "subscribe.xml"):
                subprocess.run(["sipp", f"{HOST}:{port}", "-sf", os.path.join(HERE, "scenarios", scen), "-t", "u1", "-i", HOST, "-nostdin",
                                "-m", "1000", "-r", "500", "-key", "run", f"warm{port}", "-timeout", "30s"], cwd=self.workdir, capture_output=True)

    def pids(self):
        out = []
        for p in self.procs:
            if p.poll() is None:
                out.append(p.pid)
                kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
                out += [int(k) for k in kids]
        if self.nats and self.nats.poll() is None:
            out.append(self.nats.pid)
        return out

    def collect_garbage(self):
        pass  # the nodes run without --expose-gc; held-state memory is read on the single process

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
        if self.nats and self.nats.poll() is None:
            self.nats.terminate()
            self.nats.wait(10)
        self.nats = None
        if self.schema:
            psql(self.url, f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            self.schema = None
