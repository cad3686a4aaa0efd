#!/usr/bin/env python3
"""CPU per call at a fixed rate with overload control off: A/B of two builds on a busy machine.

The bench's `cpu` scenario runs the server as configured, overload control on; on a machine whose
other load starves the SIP thread, that control refuses most calls with 503 and the step measures
refusals. This driver starts one server (a build's ROOT: its dist/ and bench/serve-memory.mjs; or
Kamailio with bench/kamailio.cfg) with overload control off, warms it up, and runs each scenario
at RATE calls/s for SECONDS with SIPp; it prints the calls completed and failed, the p99, and the
server's CPU (all threads, from /proc, over the step and one second after) per completed call,
with the busiest threads.

usage: bench/fixed-cpu.py ROOT off|pglite|postgres|kamailio SCEN[,SCEN] RATE SECONDS
         [--transport u1|t1] [--pool N] [--regrate R]      MESSAGE's registered users, their REGISTER rate
         [--prof DIR]                                      node --cpu-prof into DIR
         [--perf PREFIX]                                   perf record of each step (PREFIX-SCEN.data)
         [--sys]                                           system calls and page faults per call (perf stat)
         [--presence JSON]                                 presence settings, e.g. '{"parseThread": false}'
         [--node-flags "FLAGS"]                            more options for node (V8 flags to compare)
         [--keep-log FILE]                                 the server's output (with --node-flags --trace-gc, say)
         [--preload N] [--preload-rate R]                  N publications made (over TCP, R/s, default 4000) before
                                                           the steps: the state a long-running server holds
e.g.     git worktree add /tmp/base main && (cd /tmp/base && npm ci && npm run build)
         bench/fixed-cpu.py /tmp/base pglite message 1500 8 --pool 12000 --regrate 5000
         bench/fixed-cpu.py .         pglite message 1500 8 --pool 12000 --regrate 5000
PostgreSQL: postgres://postgres@127.0.0.1:5432/test (DATABASE_URL overrides), a schema of its own.
"""
import json, os, socket, subprocess, sys, tempfile, time, glob, shutil, argparse, urllib.parse

HOST = "127.0.0.1"
ap = argparse.ArgumentParser()
ap.add_argument("root"); ap.add_argument("store"); ap.add_argument("scens"); ap.add_argument("rate", type=int); ap.add_argument("seconds", type=float)
ap.add_argument("--prof"); ap.add_argument("--pool", type=int, default=2000); ap.add_argument("--regrate", type=int, default=2000)
ap.add_argument("--transport", default="u1"); ap.add_argument("--overload", action="store_true")
ap.add_argument("--repeat", type=int, default=1); ap.add_argument("--perf"); ap.add_argument("--sys", action="store_true"); ap.add_argument("--presence", default="{}")
ap.add_argument("--keep-log", help="copy the server's log (stdout and stderr, e.g. --trace-gc) here at the end")
ap.add_argument("--preload", type=int, default=0); ap.add_argument("--preload-rate", type=int, default=4000)
ap.add_argument("--node-flags", default="", help="more options for node, e.g. '--max-semi-space-size=8 --optimize-for-size'")
a = ap.parse_args()
ROOT = os.path.abspath(a.root)
HERE = os.path.dirname(os.path.abspath(__file__))
SCEN = os.path.join(HERE, "scenarios")
TICK = os.sysconf("SC_CLK_TCK")


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind); s.bind((HOST, 0)); p = s.getsockname()[1]; s.close(); return p


def threads(pid):
    out = {}
    if kpids: return out
    for t in glob.glob(f"/proc/{pid}/task/*"):
        try:
            st = open(t + "/stat").read()
            name = st[st.index("(") + 1:st.rindex(")")]
            f = st.rsplit(")", 1)[1].split()
            out[t.rsplit("/", 1)[1] + ":" + name] = (int(f[11]) + int(f[12])) / TICK
        except (OSError, ValueError):
            pass
    return out


def cpu(pid):
    if kpids:
        tot = 0.0
        for q in kpids():
            f = open(f"/proc/{q}/stat").read().rsplit(")", 1)[1].split()
            tot += (int(f[11]) + int(f[12])) / TICK
        return tot
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


wd = tempfile.mkdtemp(prefix="drive-")
cfg = {"sip": {"transports": ["udp", "tcp"], "maxTransactions": 1000000}, "limits": {"rate": {"requestsPerSecond": 1000000000, "burst": 1000000000}},
       "auth": {"required": False}, "http": {"host": "127.0.0.1"}, "overload": {"enabled": a.overload}, "presence": json.loads(a.presence)}
json.dump(cfg, open(wd + "/cfg.json", "w"))
port = free_port()
env = dict(os.environ, DATA_DIR=wd + "/data", SIP_HOST=HOST, SIP_PORT=str(port), HTTP_PORT=str(free_port(socket.SOCK_STREAM)),
           SIP_TLS_PORT=str(free_port(socket.SOCK_STREAM)), AUTH_REQUIRED="false", LOG_LEVEL="warn",
           PATH=ROOT + "/node_modules/.bin:" + os.environ["PATH"])
env.pop("DATABASE_URL", None)
schema = None
if a.store == "postgres":
    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/test"
    schema = f"sp_drive_{os.getpid()}"
    subprocess.run(["psql", url, "-qc", f"CREATE SCHEMA {schema}"], check=True)
    env["DATABASE_URL"] = url + "?options=" + urllib.parse.quote(f"-c search_path={schema}")
entry = [ROOT + "/bench/serve-memory.mjs"] if a.store == "off" else [ROOT + "/dist/src/cli/main.js", "serve"]
kpids = None
if a.store == "kamailio":
    db = wd + "/kamailio-db"; os.makedirs(db)
    for t in ("version", "presentity", "active_watchers", "watchers", "xcap", "pua"):
        shutil.copy(f"/usr/share/kamailio/dbtext/kamailio/{t}", db)
    kc = open(os.path.join(HERE, "kamailio.cfg")).read().replace("/tmp/kamailio-bench-db", db).replace("unix:/tmp/kamailio-bench-ctl", f"unix:{wd}/kamailio-ctl")
    open(wd + "/k.cfg", "w").write(kc); os.makedirs(wd + "/krun")
    subprocess.run(["kamailio", "-f", wd + "/k.cfg", "-A", f"BENCH_PORT={port}", "-P", wd + "/k.pid", "-Y", wd + "/krun", "-m", "2048", "-M", "32", "-E"], stdout=open(wd + "/k.log", "w"), stderr=subprocess.STDOUT)
    kmain = int(open(wd + "/k.pid").read().strip())
    kpids = lambda: [kmain, *map(int, subprocess.run(["pgrep", "-P", str(kmain)], capture_output=True, text=True).stdout.split())]
flags = ([f"--cpu-prof", f"--cpu-prof-dir={a.prof}"] if a.prof else []) + (["--perf-basic-prof-only-functions"] if a.perf else []) + a.node_flags.split()
logf = open(wd + "/server.log", "w")
class K:
    """Kamailio's main process, as far as the steps below use a server process."""
    pid = None
    def send_signal(self, sig): os.kill(kmain, 15)
    def wait(self, t): time.sleep(2)
    def kill(self): pass
srv = K() if kpids else subprocess.Popen(["node", *flags, *entry, "--config", wd + "/cfg.json"], cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT)


def sipp(scen, extra, timeout=120):
    d = tempfile.mkdtemp(dir=wd)
    cmd = ["sipp", f"{HOST}:{port}", "-sf", f"{SCEN}/{scen}", "-t", a.transport, "-i", HOST, "-nostdin", "-trace_rtt", "-rtt_freq", "1",
           "-trace_stat", "-stf", d + "/stat.csv", "-fd", "1", "-max_recv_loops", "10000", "-timeout", f"{timeout}s", "-recv_timeout", "5000",
           "-buff_size", str(4 << 20), "-default_behaviors", "all,-bye"] + extra
    t0 = time.time()
    subprocess.run(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = open(d + "/stat.csv").read().strip().splitlines()
    head, last = rows[0].split(";"), rows[-1].split(";")
    col = {n: i for i, n in enumerate(head)}
    ok, failed = int(last[col["SuccessfulCall(C)"]]), int(last[col["FailedCall(C)"]])
    rtts = []
    for f in glob.glob(d + "/*_rtt.csv"):
        for line in open(f).read().splitlines()[1:]:
            p = line.split(";")
            try:
                rtts.append(float(p[1]))
            except (ValueError, IndexError):
                pass
    rtts.sort()
    p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))] if rtts else -1
    return ok, failed, p99, time.time() - t0


# wait for OPTIONS
for _ in range(600):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.1); s.bind((HOST, 0))
    try:
        s.sendto(f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{s.getsockname()[1]};branch=z9hG4bKx{time.time()}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x{time.time()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n".encode(), (HOST, port))
        s.recvfrom(4096); break
    except OSError:
        time.sleep(0.1)
    finally:
        s.close()
else:
    srv.kill()
    sys.exit(f"the server did not answer OPTIONS; log: {wd}/server.log")

uas = None
try:
    scens = a.scens.split(",")
    users = wd + "/users.csv"
    with open(users, "w") as f:
        f.write("SEQUENTIAL\n" + "".join(f"mu{i}x{os.getpid()};\n" for i in range(a.pool)))
    # warm-up
    for s in ("publish.xml", "subscribe.xml"):
        sipp(s, ["-key", "run", f"w{os.getpid()}{s}", "-m", "1000", "-r", "500", "-l", "1000"])
    if a.preload:
        # Over TCP: its transactions end at once (Timer J is 0), so what stays is the publications.
        c0 = cpu(srv.pid)
        d = tempfile.mkdtemp(dir=wd)
        t0 = time.time()
        subprocess.run(["sipp", f"{HOST}:{port}", "-sf", f"{SCEN}/publish.xml", "-t", "t1", "-i", HOST, "-nostdin", "-key", "run", f"p{os.getpid()}",
                        "-m", str(a.preload), "-r", str(a.preload_rate), "-l", str(max(2000, a.preload_rate * 2)), "-timeout", "600s",
                        "-default_behaviors", "all,-bye", "-trace_stat", "-stf", d + "/stat.csv"], cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        last = open(d + "/stat.csv").read().strip().splitlines()
        col = {n: i for i, n in enumerate(last[0].split(";"))}
        made = int(last[-1].split(";")[col["SuccessfulCall(C)"]])
        time.sleep(5.0)  # the write-behind and the young generation settle
        print(f"preload: {made} publications in {time.time() - t0 - 5:.0f} s, server cpu {cpu(srv.pid) - c0:.2f} s", flush=True)
    if "message" in scens:
        uasp = free_port()
        uas = subprocess.Popen(["sipp", "-sf", f"{SCEN}/message_uas.xml", "-t", a.transport, "-p", str(uasp), "-i", HOST, "-nostdin", "-buff_size", str(4 << 20)],
                               cwd=wd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(wd + "/uas.err", "w"))
        time.sleep(0.5)
        if uas.poll() is not None:
            print("   !! UAS did not start:", open(wd + "/uas.err").read()[-300:], flush=True)
        c0, th0 = cpu(srv.pid), threads(srv.pid)
        ok, failed, p99, wall = sipp("register.xml", ["-inf", users, "-key", "uas_ip", HOST, "-key", "uas_port", str(uasp), "-m", str(a.pool), "-r", str(a.regrate), "-l", "4000"])
        print(f"register {a.pool} at {a.regrate}/s: ok {ok} failed {failed} p99 {p99:.0f} ms server cpu {cpu(srv.pid) - c0:.2f} s", flush=True)
    for rep in range(a.repeat):
        for s in scens:
            extra = ["-key", "run", f"r{os.getpid()}{s}{rep}", "-m", str(int(a.rate * a.seconds)), "-r", str(a.rate), "-l", str(max(2000, a.rate * 2))]
            if s == "message":
                extra += ["-inf", users]
            c0, th0 = cpu(srv.pid), threads(srv.pid)
            perf = subprocess.Popen(["perf", "record", "-F", "997", "-g", "-p", str(srv.pid), "-o", f"{a.perf}-{s}.data"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if a.perf else None
            st = subprocess.Popen(["perf", "stat", "-x,", "-e", "syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_recvmsg,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_write,syscalls:sys_enter_futex,page-faults", "-p", str(srv.pid), "-o", wd + "/stat.txt"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if a.sys else None
            ok, failed, p99, wall = sipp(s + ".xml", extra)
            if st:
                st.send_signal(2); st.wait()
                for line in open(wd + "/stat.txt"):
                    f = line.strip().split(",")
                    if len(f) > 2 and f[0].isdigit():
                        print(f"   {f[2]:40} {int(f[0]) / max(1, ok):8.2f} per call")
            if perf:
                perf.send_signal(2); perf.wait()
            time.sleep(1.0)  # the tail of the step (write-behind window)
            c1, th1 = cpu(srv.pid), threads(srv.pid)
            if uas is not None and uas.poll() is not None:
                print(f"   !! UAS sipp exited with {uas.returncode}", flush=True)
            per = sorted(((th1[k] - th0.get(k, 0), k) for k in th1), reverse=True)[:4]
            print(f"{s:9} {a.transport} {a.rate}/s {a.seconds}s: ok {ok} failed {failed} p99 {p99:.0f} ms  cpu {c1 - c0:.2f} s = {(c1 - c0) / max(1, ok) * 1e6:.0f} us/call"
                  f"  threads: {', '.join(f'{k}={v:.2f}' for v, k in per)}", flush=True)
finally:
    if uas:
        uas.terminate()
    srv.send_signal(2)
    try:
        srv.wait(30)
    except subprocess.TimeoutExpired:
        srv.kill()
    if schema:
        subprocess.run(["psql", url, "-qc", f"DROP SCHEMA {schema} CASCADE"], stderr=subprocess.DEVNULL)
    if a.keep_log:
        logf.close()
        shutil.copy(wd + "/server.log", a.keep_log)
    shutil.rmtree(wd, ignore_errors=True)
