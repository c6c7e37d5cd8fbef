"""hero-fast bench suite: every macro scenario with its peers side by side (`make bench`).

Builds bench/macro/loadgen, builds the Node.js actionhero peer (bench/peers/actionhero/setup.sh,
once), starts a private redis-server for it on a free port, then for each repeat and each server
(order rotated per repeat): start it on a free loopback port, run its scenarios, stop it by PID.
Afterwards: idle memory at 10,000 connections, py-spy profiles of hero-fast for every missed
target, and bench/RESULTS.md + bench/chart.png (ratios of hero-fast to each peer, log scale).

Scenarios (C loadgen unless noted):
  echo64x16  echo 64 B, 100 conns x 16 in flight      hero-fast echo | picows, websockets, aiohttp
  echo64x1   echo 64 B, 100 conns x 1 in flight       same
  echo16k    echo 16 KiB, 10 conns x 4 in flight      same
  action     echo action round trip, 50 conns x 1     hero-fast serve | actionhero
  fanout     1 sender -> 1,000 receivers, bursts of 16 says   hero-fast serve, actionhero |
             picows (one send per message per receiver), websockets broadcast()
  socketio   python-socketio: action and fan-out with a Python client (client-bound; own rows)
  idle       server RSS per idle WebSocket at 10,000 connections: hero-fast, actionhero, picows

Bounded: every subprocess has a timeout; the whole run stops starting new work past its budget
(--budget, default 840 s full / 200 s --quick) and reports what it skipped.

Usage: python bench/run_all.py [--quick] [--repeat N] [--duration S] [--skip actionhero,...]
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MACRO = os.path.join(HERE, "macro")
PEERS = os.path.join(MACRO, "peers")
AH_DIR = os.path.join(HERE, "peers", "actionhero")
PY = sys.executable
BIN = os.path.dirname(PY)
LOADGEN = os.path.join(MACRO, "loadgen")
sys.path.insert(0, MACRO)
from run_echo import free_port, stop, wait_port  # noqa: E402

ROOM_JOIN = '{"event":"roomAdd","room":"defaultRoom"}'
SAY = '{"event":"say","room":"defaultRoom","message":"BENCHMSG {n}"}'
FAN_RECEIVERS = 1000
FAN_BURST = 16

HF_ACTION = '''from hero_fast.actions import Action, Input


class Echo(Action):
    name = "echo"
    description = "echo x and message back (benchmark)"
    inputs = {"x": Input(required=False), "message": Input(required=False)}

    async def run(self, data):
        data.response["x"] = data.params.get("x")
        data.response["message"] = data.params.get("message")
'''
# maxMessagesPerSecond 0 / maxConnections 0: the defaults (500 msg/s per connection, 10,000
# connections) are abuse limits that a load generator trips on purpose; actionhero has neither.
HF_CONFIG = '''DEFAULT = {
    "general": {"serverName": "bench", "startingChatRooms": {"defaultRoom": {}, "benchroom": {}}},
    "servers": {"websocket": {"maxMessagesPerSecond": 0, "maxConnections": 0}},
}
'''

T0 = time.monotonic()


def log(*a):
    print(f"[{time.monotonic() - T0:6.1f}s]", *a, file=sys.stderr, flush=True)


def fmt_rate(v):
    if v is None:
        return "n/a"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k"


# ------------------------------------------------------------------ servers
class Srv:
    """A server we start on a free port and stop by PID."""

    def __init__(self, name, argv, cwd=REPO, env=None, path="/", room=False, pre=None):
        self.name, self.argv, self.cwd, self.env = name, argv, cwd, env or {}
        self.path, self.room, self.pre = path, room, pre
        self.broken = None

    def start(self, workdir):
        if self.pre:
            self.pre()
        port = free_port()
        argv = [a.replace("{port}", str(port)) for a in self.argv]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.update({k: v.replace("{port}", str(port)) for k, v in self.env.items()})
        logp = os.path.join(workdir, f"server-{self.name}.log")
        with open(logp, "ab") as f:
            proc = subprocess.Popen(argv, cwd=self.cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        if not wait_port(proc, port, 30.0):
            stop(proc)
            with open(logp, "rb") as f:
                tail = f.read()[-600:].decode(errors="replace").strip()
            self.broken = f"did not start: {shlex.join(argv)}: {tail or 'no output'}"
            return None
        time.sleep(0.5 if self.name != "actionhero" else 1.5)
        return proc, port


def lg_args(srv, scen, a):
    """loadgen argv (without -P/-S) for a scenario on a server."""
    d, w = str(a.duration), str(a.warmup)
    base = ["-u", srv.path, "-d", d, "-w", w]
    if scen == "echo64x16":
        return ["echo", "-c", "100", "-p", "16", "-s", "64", *base]
    if scen == "echo64x1":
        return ["echo", "-c", "100", "-p", "1", "-s", "64", *base]
    if scen == "echo16k":
        return ["echo", "-c", "10", "-p", "4", "-s", "16384", *base]
    if scen == "action":
        return ["action", "-c", "50", "-p", "1", "-W", "1", *base]
    if scen == "fanout":
        extra = ["-J", ROOM_JOIN, "-W", "2"] if srv.room else []
        return ["fanout", "-c", str(FAN_RECEIVERS), "-p", str(FAN_BURST), *extra, "-m", SAY,
                "-k", "BENCHMSG", "-T", "10", *base]
    raise KeyError(scen)


def run_json(argv, timeout):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"    timed out after {timeout:.0f}s: {shlex.join(argv)}")
        return None, "timeout"
    line = next((ln for ln in reversed(r.stdout.splitlines()) if ln.startswith("{")), None)
    err = r.stderr.strip()
    if err:
        log("    stderr: " + err[-400:].replace("\n", "\n    stderr: "))
    if line is None:
        return None, f"exit {r.returncode}: {err[-200:]}"
    res = json.loads(line)
    res["exit"] = r.returncode
    return res, None


def show(path):
    """A command line for RESULTS.md with repo-relative paths and a port placeholder."""
    s = shlex.join(path)
    s = s.replace(REPO + "/", "").replace(PY, "python")
    return s


# ------------------------------------------------------------------ main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="~3 minutes: 1 repeat, short windows")
    ap.add_argument("--repeat", type=int, help="repeats (medians) [3; quick 1]")
    ap.add_argument("--duration", type=float, help="measured seconds per run [3; quick 1.5]")
    ap.add_argument("--warmup", type=float, help="warmup seconds per run [1; quick 0.5]")
    ap.add_argument("--budget", type=float, help="seconds after which no new work starts [840; quick 200]")
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--skip", default="", help="comma list: actionhero,socketio,idle,profile,echo,fanout,action")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--chart", default=os.path.join(HERE, "chart.png"))
    a = ap.parse_args()
    q = a.quick
    a.repeat = a.repeat or (1 if q else 3)
    a.duration = a.duration or (1.5 if q else 3.0)
    a.warmup = a.warmup if a.warmup is not None else (0.5 if q else 1.0)
    a.budget = a.budget or (200.0 if q else 840.0)
    skip = set(filter(None, a.skip.split(",")))
    if not (1 <= a.repeat <= 10 and 0 < a.duration <= 30 and 0 <= a.warmup <= 10 and 30 <= a.budget <= 3600):
        ap.error("repeat 1..10, duration 0..30, warmup 0..10, budget 30..3600")
    deadline = T0 + a.budget

    def time_left():
        return deadline - time.monotonic()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the servers

    workdir = tempfile.mkdtemp(prefix="hero-fast-bench-")
    notes: list[str] = []
    log(f"work dir {workdir}")
    subprocess.run(["make", "-s", "-C", MACRO, "loadgen"], check=True, timeout=120)

    # hero-fast bench project
    proj = os.path.join(workdir, "hfproj")
    os.makedirs(os.path.join(proj, "actions"))
    os.makedirs(os.path.join(proj, "config"))
    with open(os.path.join(proj, "actions", "echo.py"), "w") as f:
        f.write(HF_ACTION)
    with open(os.path.join(proj, "config", "api.py"), "w") as f:
        f.write(HF_CONFIG)
    hf_bin = os.path.join(BIN, "hero-fast")
    hf_serve = Srv("hero-fast", [hf_bin, "serve", "--project", proj, "--port", "{port}", "--log-level", "warning"],
                   path="/primus", room=True)
    hf_echo = Srv("hero-fast", [PY, "-m", "hero_fast.echo", "--host", "127.0.0.1", "--port", "{port}"])

    # actionhero + its redis
    redis_proc = None
    ah = None
    if "actionhero" not in skip:
        if not shutil.which("node") or not shutil.which("redis-server"):
            notes.append("actionhero skipped: node or redis-server missing")
        else:
            log("actionhero peer: setup.sh")
            try:
                r = subprocess.run(["bash", os.path.join(AH_DIR, "setup.sh")], capture_output=True, text=True,
                                   timeout=900)
                ok = r.returncode == 0
                if not ok:
                    notes.append(f"actionhero setup failed: {r.stderr[-300:]}")
            except subprocess.TimeoutExpired:
                ok = False
                notes.append("actionhero setup timed out (900 s)")
            if ok:
                rport = free_port()
                redis_proc = subprocess.Popen(
                    ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
                if not wait_port(redis_proc, rport, 10):
                    notes.append("actionhero skipped: private redis-server did not start")
                else:
                    def flush_redis(p=rport):
                        subprocess.run(["redis-cli", "-p", str(p), "flushall"], capture_output=True, timeout=10)
                    ah = Srv("actionhero", ["node", "dist/server.js"], cwd=os.path.join(AH_DIR, "app"),
                             env={"PORT": "{port}", "REDIS_PORT": str(rport), "REDIS_HOST": "127.0.0.1",
                                  "LOG_LEVEL": "warning"},
                             path="/primus", room=True, pre=flush_redis)

    peers = {
        "picows": Srv("picows", [PY, os.path.join(PEERS, "picows_echo.py"), "--port", "{port}"]),
        "websockets": Srv("websockets", [PY, os.path.join(PEERS, "websockets_echo.py"), "--port", "{port}"]),
        "aiohttp": Srv("aiohttp", [PY, os.path.join(PEERS, "aiohttp_echo.py"), "--port", "{port}"]),
        "picows-fanout": Srv("picows", [PY, os.path.join(PEERS, "picows_fanout.py"), "--port", "{port}"]),
        "websockets-broadcast": Srv("websockets", [PY, os.path.join(PEERS, "websockets_broadcast.py"),
                                                   "--port", "{port}"]),
    }
    sio = Srv("python-socketio", [PY, os.path.join(PEERS, "socketio_server.py"), "--port", "{port}"])

    # jobs: (server, [scenarios])  -- one server start per job per repeat
    jobs = []
    if "echo" not in skip:
        jobs += [(hf_echo, ["echo64x16", "echo64x1", "echo16k"])]
        jobs += [(peers[n], ["echo64x16", "echo64x1", "echo16k"]) for n in ("picows", "websockets", "aiohttp")]
    hf_sc = [s for s in ("action", "fanout") if s not in skip]
    if hf_sc:
        jobs.append((hf_serve, hf_sc))
        if ah:
            jobs.append((ah, hf_sc))
    if "fanout" not in skip:
        jobs += [(peers["picows-fanout"], ["fanout"]), (peers["websockets-broadcast"], ["fanout"])]
    if "socketio" not in skip:
        jobs.append((sio, ["sio-action", "sio-fanout"]))

    results: dict = collections.defaultdict(list)  # (scenario, server) -> [res]
    commands: dict = {}  # (scenario, server) -> shown command
    skipped: list[str] = []
    sio_recv = 200 if q else FAN_RECEIVERS
    try:
        for rep in range(a.repeat):
            k = rep % len(jobs)
            for srv, scen in jobs[k:] + jobs[:k]:
                if srv.broken:
                    continue
                if time_left() < 10:
                    skipped.append(f"repeat {rep + 1}: {srv.name} {','.join(scen)} (time budget)")
                    continue
                log(f"[{rep + 1}/{a.repeat}] {srv.name}: {', '.join(scen)}")
                started = srv.start(workdir)
                if not started:
                    log(f"  {srv.name} broken: {srv.broken}")
                    notes.append(f"{srv.name}: {srv.broken}")
                    continue
                proc, port = started
                try:
                    for sc in scen:
                        if sc.startswith("sio-"):
                            mode = sc[4:]
                            argv = [PY, os.path.join(MACRO, "socketio_load.py"), mode, "-P", str(port),
                                    "-d", str(a.duration), "-w", str(a.warmup), "-S", str(proc.pid)]
                            if mode == "fanout":
                                argv += ["-c", str(sio_recv), "-p", str(FAN_BURST)]
                            res, err = run_json(argv, a.duration + a.warmup + 90)
                        else:
                            argv = [LOADGEN, *lg_args(srv, sc, a), "-P", str(port), "-S", str(proc.pid)]
                            res, err = run_json(argv, a.duration + a.warmup + 60)
                        commands[(sc, srv.name)] = show(argv).replace(f"-P {port}", "-P $PORT").replace(
                            f"-S {proc.pid}", "-S $SERVER_PID")
                        if res is None:
                            log(f"  {sc}: failed ({err})")
                            notes.append(f"{srv.name} {sc} repeat {rep + 1}: failed ({err})")
                        else:
                            results[(sc, srv.name)].append(res)
                            log(f"  {sc}: {fmt_rate(res.get('msg_per_s'))}/s errors={res.get('errors')} "
                                f"server_cpu={res.get('server_cpu_pct')}% client_cpu={res.get('cpu_pct')}% "
                                f"sys_busy={res.get('sys_busy_pct')}%")
                            if res.get("errors"):
                                notes.append(f"{srv.name} {sc} repeat {rep + 1}: {res.get('errors')} error(s)"
                                             f"{' (burst timed out)' if res.get('timed_out') else ''}")
                        if proc.poll() is not None:
                            notes.append(f"{srv.name} exited (code {proc.returncode}) during {sc}")
                            break
                finally:
                    stop(proc)

        # idle memory
        idle_srvs = [hf_serve] + ([ah] if ah else []) + [peers["picows"]]
        if "idle" not in skip:
            for srv in idle_srvs:
                if srv.broken:
                    continue
                if time_left() < 25:
                    skipped.append(f"idle memory: {srv.name} (time budget)")
                    continue
                log(f"idle memory: {srv.name}, {a.idle_conns} connections")
                started = srv.start(workdir)
                if not started:
                    notes.append(f"{srv.name}: {srv.broken}")
                    continue
                proc, port = started
                try:
                    time.sleep(1.0)
                    argv = [PY, os.path.join(MACRO, "idle_conns.py"), "-P", str(port), "-S", str(proc.pid),
                            "-n", str(a.idle_conns), "-u", srv.path]
                    res, err = run_json(argv, 150)
                    commands[("idle", srv.name)] = show(argv).replace(f"-P {port}", "-P $PORT").replace(
                        f"-S {proc.pid}", "-S $SERVER_PID")
                    if res:
                        results[("idle", srv.name)].append(res)
                        log(f"  {res.get('kib_per_conn')} KiB/conn (failed {res.get('failed')})")
                    else:
                        notes.append(f"idle {srv.name}: failed ({err})")
                finally:
                    stop(proc)

        # evaluate, then profile hero-fast on what missed
        evald = evaluate(results)
        profiles = {}
        if "profile" not in skip and not os.path.exists(os.path.join(BIN, "py-spy")):
            notes.append("py-spy not installed in the venv: no profiles")
        elif "profile" not in skip:
            if True:
                missed_sc = []
                for t in evald["targets"]:
                    if t["met"] is False and t["scenario"] not in missed_sc and t["scenario"] != "idle":
                        missed_sc.append(t["scenario"])
                for sc in missed_sc:
                    if time_left() < 20:
                        skipped.append(f"profile {sc} (time budget)")
                        continue
                    srv = hf_echo if sc.startswith("echo") else hf_serve
                    profiles[sc] = profile(srv, sc, a, workdir, notes)
    finally:
        if redis_proc:
            stop(redis_proc)

    write_results(a, results, commands, evald, profiles, notes, skipped, workdir)
    chart(a, evald)
    log(f"wrote {a.out} and {a.chart} in {time.monotonic() - T0:.0f} s")
    return 0


# ------------------------------------------------------------------ evaluation
PEER_OF = {
    "echo64x16": ["picows", "websockets", "aiohttp"],
    "echo64x1": ["picows", "websockets", "aiohttp"],
    "echo16k": ["picows", "websockets", "aiohttp"],
    "action": ["actionhero"],
    "fanout": ["picows", "websockets", "actionhero"],
}
TITLES = {
    "echo64x16": "echo 64 B, 100 conns x 16 in flight (msg/s)",
    "echo64x1": "echo 64 B, 100 conns x 1 in flight (msg/s)",
    "echo16k": "echo 16 KiB, 10 conns x 4 in flight (msg/s)",
    "action": "echo action round trip, 50 conns x 1 in flight (req/s)",
    "fanout": f"room fan-out 1 -> {FAN_RECEIVERS}, bursts of {FAN_BURST} (deliveries/s)",
    "sio-action": "python-socketio echo call, 50 clients x 1 (Python client)",
    "sio-fanout": "python-socketio room fan-out (Python client)",
}
TARGETS = [  # scenario, peer, min ratio, label
    ("echo64x16", "picows", 10.0, "echo 64 B, 16 in flight: >= 10x picows"),
    ("echo64x1", "picows", 1.0, "echo 64 B, 1 in flight: >= 1.0x picows"),
    ("echo16k", "picows", 2.0, "echo 16 KiB, 10 conns: >= 2x picows"),
    ("action", "actionhero", 5.0, "action round trip, 50 conns: >= 5x actionhero"),
    ("fanout", "picows", 10.0, "room fan-out 1 -> 1,000: >= 10x picows per-message writes"),
    ("fanout", "actionhero", 20.0, "room fan-out 1 -> 1,000: >= 20x actionhero"),
]


def med(results, sc, name, key="msg_per_s"):
    vals = [r[key] for r in results.get((sc, name), []) if r.get(key) is not None and not r.get("errors")]
    return statistics.median(vals) if vals else None


def evaluate(results):
    ratios = {}
    for sc, peers in PEER_OF.items():
        h = med(results, sc, "hero-fast")
        for p in peers:
            v = med(results, sc, p)
            if h and v:
                ratios[(sc, p)] = h / v
    targets = []
    for sc, p, need, label in TARGETS:
        r = ratios.get((sc, p))
        targets.append({"scenario": sc, "peer": p, "need": need, "label": label, "ratio": r,
                        "met": None if r is None else r >= need})
    idle = med(results, "idle", "hero-fast", "kib_per_conn")
    targets.append({"scenario": "idle", "peer": None, "need": 8.0, "ratio": idle,
                    "label": "<= 8 KiB RSS per idle WebSocket at 10,000 connections",
                    "met": None if idle is None else idle <= 8.0})
    return {"ratios": ratios, "targets": targets}


# ------------------------------------------------------------------ profiling
def profile(srv, sc, a, workdir, notes):
    """py-spy (--native) on hero-fast while the loadgen runs `sc`; top frames as text."""
    started = srv.start(workdir)
    if not started:
        return None
    proc, port = started
    secs = 3 if a.quick else 5
    raw = os.path.join(workdir, f"profile-{sc}.txt")
    folded = os.path.join(HERE, "profiles", f"{sc}.folded.txt")
    os.makedirs(os.path.dirname(folded), exist_ok=True)
    cmd = [os.path.join(BIN, "py-spy"), "record", "--native", "-p", str(proc.pid), "-d", str(secs),
           "--format", "raw", "-o", raw]
    out = None
    try:
        sa = argparse.Namespace(duration=secs + 3, warmup=0.5)
        lg = subprocess.Popen([LOADGEN, *lg_args(srv, sc, sa), "-P", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        log(f"profile {sc}: {shlex.join(cmd)}")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 30)
        try:
            lg.wait(timeout=secs + 30)
        except subprocess.TimeoutExpired:
            lg.kill()
            lg.wait()
        if r.returncode != 0 or not os.path.exists(raw):
            notes.append(f"py-spy failed on {sc}: {r.stderr[-300:]}")
            return None
        out = summarize_profile(raw)
        out["command"] = show(cmd).replace(str(proc.pid), "$SERVER_PID").replace(raw, f"profile-{sc}.txt")
        shutil.copyfile(raw, folded)  # folded stacks, for flame-graph tools
        out["folded"] = os.path.relpath(folded, REPO)
    finally:
        stop(proc)
    return out


def short(frame):
    # "func (file.py:123)" -> "func (file.py)"
    name = frame.strip()
    if "(" in name and name.endswith(")"):
        fn, loc = name[:-1].rsplit(" (", 1)
        loc = os.path.basename(loc.rsplit(":", 1)[0]).rstrip(")")
        return f"{fn} ({loc})"
    return name


def summarize_profile(raw):
    selfc, incl = collections.Counter(), collections.Counter()
    total = 0
    with open(raw) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or " " not in line:
                continue
            stack, n = line.rsplit(" ", 1)
            try:
                n = int(n)
            except ValueError:
                continue
            frames = [short(x) for x in stack.split(";") if x]
            frames = [x for x in frames if not x.startswith("process ") and not x.startswith("thread ")]
            if not frames:
                continue
            total += n
            selfc[frames[-1]] += n
            for fr in set(frames):
                incl[fr] += n
    return {"samples": total,
            "self": [(fr, 100.0 * c / total) for fr, c in selfc.most_common(12)] if total else [],
            "incl": [(fr, 100.0 * c / total) for fr, c in incl.most_common(40)] if total else []}


# ------------------------------------------------------------------ report
def versions():
    def cmd(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception:
            return "n/a"

    v = {}
    for mod in ("uvloop", "picows", "websockets", "aiohttp", "socketio", "orjson"):
        try:
            m = __import__(mod)
            v[mod if mod != "socketio" else "python-socketio"] = getattr(m, "__version__", "?")
        except Exception:
            v[mod] = "not installed"
    try:
        from importlib.metadata import version
        v["python-socketio"] = version("python-socketio")
        v["hero-fast"] = version("hero-fast")
    except Exception:
        pass
    v["node"] = cmd(["node", "--version"]) if shutil.which("node") else "n/a"
    v["actionhero"] = "29.3.5"
    v["redis-server"] = cmd(["redis-server", "--version"]).split(" v=")[-1].split(" ")[0] if shutil.which(
        "redis-server") else "n/a"
    v["git"] = cmd(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]) + (
        " (+ uncommitted changes)" if cmd(["git", "-C", REPO, "status", "--porcelain", "--", "src"]) else "")
    return v


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_results(a, results, commands, evald, profiles, notes, skipped, workdir):
    L = []
    v = versions()
    L.append("# hero-fast benchmark results\n")
    L.append(f"Generated by `{'make bench' if not a.quick else 'python bench/run_all.py --quick'}` "
             f"(bench/run_all.py) on {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}.\n")
    L.append("## Machine\n")
    L.append(f"- cores (`nproc`): {os.cpu_count()}; CPU: {cpu_model()}")
    L.append(f"- kernel: {platform.release()}; Python {platform.python_version()}")
    L.append("- " + ", ".join(f"{k} {val}" for k, val in v.items()))
    L.append(f"- run: {a.repeat} repeat(s) of {a.duration:g} s measured (+{a.warmup:g} s warmup); "
             "medians over repeats; server order rotated per repeat; servers started/stopped per repeat.")
    L.append("- The machine is shared and noisy (2 cores: the load generator, the server and anything else "
             "compete); compare by ratio within this run. `sys_busy` in the raw JSON shows the whole machine.\n")

    L.append("## Results (medians)\n")
    names = ["hero-fast", "picows", "websockets", "aiohttp", "actionhero"]
    L.append("| scenario | " + " | ".join(names) + " | hero-fast ratio to each peer |")
    L.append("|---|" + "---|" * len(names) + "---|")
    for sc in ("echo64x16", "echo64x1", "echo16k", "action", "fanout"):
        cells = []
        for n in names:
            m = med(results, sc, n)
            nerr = sum(1 for r in results.get((sc, n), []) if r.get("errors"))
            c = fmt_rate(m) if (sc, n) in results else "—"
            if nerr:
                c += f" ({nerr} run(s) w/ errors)"
            cells.append(c)
        rat = ", ".join(f"{p} {evald['ratios'][(sc, p)]:.2f}x" for p in PEER_OF[sc] if (sc, p) in evald["ratios"])
        L.append(f"| {TITLES[sc]} | " + " | ".join(cells) + f" | {rat or 'n/a'} |")
    L.append("")
    L.append("Fan-out peers: picows = one `transport.send` per message per receiver "
             "(bench/macro/peers/picows_fanout.py); websockets = `broadcast()` "
             "(peers/websockets_broadcast.py); both without rooms (every frame goes to every connection). "
             "hero-fast and actionhero: receivers `roomAdd` defaultRoom, the sender `say`s; only chat messages "
             "(marker BENCHMSG) count.\n")

    L.append("### python-socketio (separate rows: Python client, likely client-bound)\n")
    L.append("| scenario | python-socketio | client CPU % | server CPU % | hero-fast (C loadgen, same scenario) |")
    L.append("|---|---|---|---|---|")
    for sc, ref in (("sio-action", "action"), ("sio-fanout", "fanout")):
        m = med(results, sc, "python-socketio")
        cc = med(results, sc, "python-socketio", "cpu_pct")
        sc_ = med(results, sc, "python-socketio", "server_cpu_pct")
        rs = results.get((sc, "python-socketio"), [])
        title = TITLES[sc] + (f", {rs[0].get('receivers')} receivers" if rs and rs[0].get("receivers") else "")
        L.append(f"| {title} | {fmt_rate(m)} | {cc if cc is not None else 'n/a'} | "
                 f"{sc_ if sc_ is not None else 'n/a'} | {fmt_rate(med(results, ref, 'hero-fast'))} |")
    L.append("\nThe socket.io client runs python-socketio's AsyncClient in one Python process; when its CPU "
             "is near 100 % the row is a lower bound for the server, so no target is computed from it.\n")

    L.append("### Idle memory (server RSS growth per idle WebSocket)\n")
    L.append("| server | connections | RSS before (KiB) | RSS after (KiB) | KiB per connection | failed |")
    L.append("|---|---|---|---|---|---|")
    for n in ("hero-fast", "actionhero", "picows"):
        for r in results.get(("idle", n), []):
            L.append(f"| {n} | {r['warm']} + {r['added']} | {r['rss_before_kib']} | {r['rss_after_kib']} | "
                     f"{r['kib_per_conn']} | {r['failed']} |")
    L.append("\nRSS from /proc/PID/status (VmRSS) after 100 warm-up connections and again after the rest "
             "(2 s settle each); per connection = difference / added connections. One run per server.\n")

    L.append("## Targets (issue 5)\n")
    L.append("| target | measured | status |")
    L.append("|---|---|---|")
    for t in evald["targets"]:
        r = t["ratio"]
        if t["scenario"] == "idle":
            meas = "n/a" if r is None else f"{r:.2f} KiB/conn"
            if t["met"] is None:
                st = "not measured"
            elif t["met"]:
                st = f"met ({t['need'] - r:.2f} KiB under)"
            else:
                st = f"MISSED by {r - t['need']:.2f} KiB/conn ({r / t['need']:.2f}x the limit)"
        else:
            meas = "n/a" if r is None else f"{r:.2f}x"
            if t["met"] is None:
                st = "not measured"
            elif t["met"]:
                st = f"met ({r / t['need']:.2f}x the target)"
            else:
                st = f"MISSED by {t['need'] - r:.2f}x (reached {100 * r / t['need']:.0f} % of the target; " \
                     f"needs {t['need'] / r:.2f}x faster)"
        L.append(f"| {t['label']} | {meas} | {st} |")
    L.append("")

    L.append("## CPU during the window (median, % of one core: server / load generator / whole machine)\n")
    L.append("| scenario | server | server CPU | loadgen CPU | machine busy |")
    L.append("|---|---|---|---|---|")
    for sc, n in sorted(results):
        if sc == "idle":
            continue
        vals = [med(results, sc, n, k) for k in ("server_cpu_pct", "cpu_pct", "sys_busy_pct")]
        L.append(f"| {sc} | {n} | " + " | ".join("n/a" if x is None else f"{x:.0f}" for x in vals) + " |")
    L.append("")

    if profiles:
        L.append("## Next bottlenecks (py-spy --native on hero-fast, scenarios with a missed target)\n")
        for sc, p in profiles.items():
            if not p:
                L.append(f"### {sc}: profile failed\n")
                continue
            L.append(f"### {sc} ({p['samples']} samples)\n")
            L.append(f"`{p['command']}` (while the loadgen ran the scenario)"
                     + (f"; folded stacks: `{p['folded']}`" if p.get("folded") else "") + "\n")
            L.append("Top self time:\n")
            L.append("| % | frame |")
            L.append("|---|---|")
            for fr, pct in p["self"]:
                L.append(f"| {pct:.1f} | `{fr}` |")
            L.append("\nTop inclusive (Python-level frames):\n")
            L.append("| % | frame |")
            L.append("|---|---|")
            shown = 0
            for fr, pct in p["incl"]:
                if "(" not in fr or (".py" not in fr and ".pyx" not in fr) or pct >= 99.0:
                    continue
                L.append(f"| {pct:.1f} | `{fr}` |")
                shown += 1
                if shown >= 12:
                    break
            L.append("")
        L.append("Flame graph of a scenario: `py-spy record -o flame.svg --native -p $SERVER_PID -d 5` "
                 "while the loadgen command above runs.\n")

    L.append("## Commands\n")
    L.append("Servers (each on a free loopback port, stopped by PID):\n")
    L.append("- hero-fast echo: `python -m hero_fast.echo --host 127.0.0.1 --port $PORT`")
    L.append("- hero-fast serve: `hero-fast serve --project $BENCH_PROJECT --port $PORT --log-level warning` "
             "(project: an `echo` action returning `x`/`message`; config "
             "`servers.websocket.maxMessagesPerSecond=0`, `maxConnections=0`, rooms defaultRoom, benchroom)")
    L.append("- actionhero 29.3.5: `bash bench/peers/actionhero/setup.sh` once, then in "
             "bench/peers/actionhero/app: `PORT=$PORT REDIS_PORT=$REDIS LOG_LEVEL=warning "
             "node dist/server.js` with a private `redis-server --port $REDIS --save ''` (flushed before each start)")
    L.append("- peers: `python bench/macro/peers/{picows_echo,websockets_echo,aiohttp_echo,picows_fanout,"
             "websockets_broadcast,socketio_server}.py --port $PORT`\n")
    L.append("Load (per scenario and server):\n")
    L.append("```")
    for (sc, n), c in sorted(commands.items()):
        L.append(f"# {sc} / {n}")
        L.append(c)
    L.append("```\n")
    if skipped or notes:
        L.append("## Notes, failures, skipped work\n")
        for s in skipped:
            L.append(f"- skipped: {s}")
        for s in notes:
            L.append(f"- {s}")
        L.append("")
    L.append("Raw results (JSON lines): `bench/results.jsonl`.\n")
    with open(a.out, "w") as f:
        f.write("\n".join(L))
    with open(os.path.join(HERE, "results.jsonl"), "w") as f:
        for (sc, n), rs in sorted(results.items()):
            for r in rs:
                f.write(json.dumps({"scenario": sc, "server": n, **r}) + "\n")


def chart(a, evald):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed: no chart")
        return
    items = sorted(evald["ratios"].items(), key=lambda kv: list(PEER_OF).index(kv[0][0]))
    if not items:
        return
    need = {(sc, p): n for sc, p, n, _ in TARGETS}
    labels = [f"{sc}\nvs {p}" for (sc, p), _ in items]
    vals = [r for _, r in items]
    colors = []
    for k, r in items:
        if k in need:
            colors.append("tab:green" if r >= need[k] else "tab:red")
        else:
            colors.append("tab:gray")
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(items)), 5))
    x = range(len(items))
    ax.bar(x, vals, color=colors)
    for i, (k, r) in enumerate(items):
        ax.text(i, r, f"{r:.2f}x", ha="center", va="bottom", fontsize=8)
        if k in need:
            ax.plot([i - 0.4, i + 0.4], [need[k], need[k]], color="black", linestyle="--", linewidth=1)
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("hero-fast / peer (log)")
    ax.set_title("hero-fast throughput ratio to each peer (dashed: issue-5 target; green met, red missed, "
                 "gray no target)", fontsize=9)
    fig.tight_layout()
    fig.savefig(a.chart, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
