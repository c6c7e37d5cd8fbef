"""Macro echo benchmark: run bench/macro/loadgen against echo servers.

For each repeat and each server: start the server on a free loopback port,
wait until it accepts, run every scenario with the loadgen, stop the server by
its PID.  Prints a markdown table of median msg/s per scenario with the ratio
against picows (when picows is among the servers).

Usage:
  python bench/macro/run_echo.py --server picows --server hero-fast
  python bench/macro/run_echo.py --server picows --server aiohttp \
      --scenario echo64x1 --duration 3 --repeat 5
  python bench/macro/run_echo.py --server 'mine=python my_echo.py --port {port}'

On a shared machine each run first waits (up to --wait-quiet s) for other
processes to go idle, and a run during which they used more than --max-other %
of a core is retried (--retries); the CPU table shows server / loadgen / other.
Use --wait-quiet 0 --retries 0 to disable.  Raw per-run results: --json PATH.

Servers: picows, websockets, aiohttp, raw, raw-passthrough, c-epoll (bench/macro/epoll_server
echo, built with the loadgen), hero-fast, or
NAME=COMMAND where COMMAND contains {port}.  "hero-fast" runs
`python -m hero_fast.echo --host 127.0.0.1 --port N` (from the repo root,
adding src/ to PYTHONPATH if that is what makes it importable); it is skipped
with a message if it cannot be imported or does not start.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

from serverproc import Server, stop

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PEERS = os.path.join(HERE, "peers")
PY = sys.executable

SERVERS = {
    "picows": [PY, os.path.join(PEERS, "picows_echo.py"), "--port", "{port}"],
    "websockets": [PY, os.path.join(PEERS, "websockets_echo.py"), "--port", "{port}"],
    "aiohttp": [PY, os.path.join(PEERS, "aiohttp_echo.py"), "--port", "{port}"],
    "raw": [PY, os.path.join(PEERS, "raw_uvloop_echo.py"), "--port", "{port}"],
    "raw-passthrough": [PY, os.path.join(PEERS, "raw_uvloop_echo.py"), "--port", "{port}",
                        "--passthrough"],
    "c-epoll": [os.path.join(HERE, "epoll_server"), "echo", "-P", "{port}"],
    "hero-fast": [PY, "-m", "hero_fast.echo", "--host", "127.0.0.1", "--port", "{port}"],
}

# name -> (description, loadgen arguments)
SCENARIOS = {
    "echo64x16": ("echo 64 B, 100 conns x 16 in flight", ["echo", "-c", "100", "-p", "16", "-s", "64"]),
    "echo64x1": ("echo 64 B, 100 conns x 1 in flight", ["echo", "-c", "100", "-p", "1", "-s", "64"]),
    "echo16kx4": ("echo 16 KiB, 10 conns x 4 in flight", ["echo", "-c", "10", "-p", "4", "-s", "16384"]),
    "action50x1": ("action JSON, 50 conns x 1 in flight", ["action", "-c", "50", "-p", "1"]),
}
DEFAULT_SCENARIOS = ["echo64x16", "echo64x1", "echo16kx4"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def hero_env() -> dict | None:
    """Environment additions under which hero_fast.echo can be found, or None."""
    src = os.path.join(REPO, "src")
    candidates: list[dict] = [{}]
    if os.path.isdir(src):
        pp = os.environ.get("PYTHONPATH")
        candidates.append({"PYTHONPATH": src + (os.pathsep + pp if pp else "")})
    for extra in candidates:
        try:
            r = subprocess.run([PY, "-c", "import importlib.util, sys; "
                                "sys.exit(importlib.util.find_spec('hero_fast.echo') is None)"], cwd=REPO,
                               env=dict(os.environ, **extra), capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            continue
        if r.returncode == 0:
            return extra
    return None


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


def wait_quiet(max_wait: float, threshold: float = 10.0, sample: float = 1.0) -> float:
    """Wait until the machine's busy CPU over `sample` s is below `threshold`% of
    one core (our server is idle then, so this is other processes), at most
    `max_wait` s.  Returns the last busy percentage seen."""
    ncpu = os.cpu_count() or 1
    deadline = time.monotonic() + max_wait
    busy = 0.0
    while True:
        b0, t0 = _cpu_times()
        time.sleep(sample)
        b1, t1 = _cpu_times()
        busy = 100.0 * ncpu * (b1 - b0) / max(1, t1 - t0)
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def run_loadgen(loadgen: str, args: list[str], port: int, pid: int, a) -> dict | None:
    argv = [loadgen, *args, "-P", str(port), "-d", str(a.duration), "-w", str(a.warmup),
            "-t", str(a.threads), "-S", str(pid)]
    timeout = a.duration + a.warmup + 60
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"    loadgen timed out: {shlex.join(argv)}")
        return None
    line = next((ln for ln in reversed(r.stdout.splitlines()) if ln.startswith("{")), None)
    if r.stderr.strip():
        log("    loadgen: " + r.stderr.strip().replace("\n", "\n    loadgen: "))
    if line is None:
        log(f"    loadgen failed (exit {r.returncode}): {shlex.join(argv)}")
        return None
    res = json.loads(line)
    res["exit"] = r.returncode
    return res


def other_cpu(res: dict) -> float | None:
    """CPU used by processes other than the server and the loadgen (% of one core)."""
    try:
        return round(max(0.0, res["sys_busy_pct"] - res["server_cpu_pct"] - res["cpu_pct"]), 1)
    except KeyError:
        return None


def fmt_rate(v: float | None) -> str:
    if v is None:
        return "n/a"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    return f"{v / 1e3:.1f}k"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", action="append", default=[],
                    help="server name ({}) or NAME=COMMAND with {{port}}; repeatable".format(", ".join(SERVERS)))
    ap.add_argument("--scenario", action="append", default=[],
                    help="scenario ({}); repeatable; default: {}".format(
                        ", ".join(SCENARIOS), " ".join(DEFAULT_SCENARIOS)))
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per run [5]")
    ap.add_argument("--warmup", type=float, default=1.0, help="warmup seconds per run [1]")
    ap.add_argument("--repeat", type=int, default=3, help="repeats; medians are reported [3]")
    ap.add_argument("--threads", type=int, default=1, help="loadgen threads [1]")
    ap.add_argument("--max-other", type=float, default=20.0,
                    help="a run during which other processes used more than this %% of one core "
                         "counts as noisy and is retried [20]")
    ap.add_argument("--retries", type=int, default=1,
                    help="extra attempts for a noisy run; the least noisy one is kept [1]")
    ap.add_argument("--wait-quiet", type=float, default=20.0, metavar="SEC",
                    help="before each run wait up to SEC s for other processes to use <10%% "
                         "of one core (0 disables) [20]")
    ap.add_argument("--loadgen", default=os.path.join(HERE, "loadgen"))
    ap.add_argument("--json", metavar="PATH", help="also write every raw result to PATH (JSON lines)")
    a = ap.parse_args()

    names = a.server or ["picows"]
    scen = a.scenario or DEFAULT_SCENARIOS
    for s in scen:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s}")
    if not (0 <= a.wait_quiet <= 600):
        ap.error("wait-quiet must be 0..600 s")
    if not (0 <= a.retries <= 10):
        ap.error("retries must be 0..10")
    if not (1 <= a.repeat <= 100) or not (0 < a.duration <= 600) or not (0 <= a.warmup <= 600):
        ap.error("repeat must be 1..100, duration 0..600 s, warmup 0..600 s")

    if not os.path.exists(a.loadgen) or "c-epoll" in names:
        subprocess.run(["make", "-s", "-C", HERE], check=True, timeout=120)

    servers: list[Server] = []
    for n in names:
        if "=" in n:
            name, cmd = n.split("=", 1)
            servers.append(Server(name, shlex.split(cmd), cwd=REPO, settle=0.3))
        elif n == "hero-fast":
            env = hero_env()
            srv = Server(n, SERVERS[n], cwd=REPO, env=env, settle=0.3)
            if env is None:
                srv.broken = "hero_fast.echo not found (not built yet?)"
            servers.append(srv)
        elif n in SERVERS:
            servers.append(Server(n, SERVERS[n], cwd=REPO, settle=0.3))
        else:
            ap.error(f"unknown server {n}")

    results: dict[tuple[str, str], list[dict]] = {}
    jsonf = open(a.json, "w") if a.json else None
    log_path = f"/tmp/run_echo_server_{os.getpid()}.log"
    try:
        for rep in range(a.repeat):
            # rotate the order each repeat so drift on a noisy machine spreads evenly
            order = servers[rep % len(servers):] + servers[:rep % len(servers)]
            for srv in order:
                if srv.broken:
                    continue
                log(f"[{rep + 1}/{a.repeat}] {srv.name}")
                started = srv.start(log_path)
                if started is None:
                    log(f"  skipping {srv.name}: {srv.broken}")
                    continue
                proc, port = started
                try:
                    for s in scen:
                        best = None
                        for attempt in range(1 + a.retries):
                            if a.wait_quiet > 0:
                                busy = wait_quiet(a.wait_quiet)
                                if busy >= 10.0:
                                    log(f"    machine still {busy:.0f}% busy after waiting {a.wait_quiet:g} s")
                            res = run_loadgen(a.loadgen, SCENARIOS[s][1], port, proc.pid, a)
                            if res is None or proc.poll() is not None:
                                break
                            res["other_cpu_pct"] = other_cpu(res)
                            log(f"  {s}: {fmt_rate(res.get('msg_per_s'))} msg/s "
                                f"(errors {res.get('errors')}, loadgen cpu {res.get('cpu_pct')}%, "
                                f"server cpu {res.get('server_cpu_pct')}%, "
                                f"other cpu {res['other_cpu_pct']}%)")
                            if best is None or (res["other_cpu_pct"] or 0) < (best["other_cpu_pct"] or 0):
                                best = res
                            if (res["other_cpu_pct"] or 0) <= a.max_other:
                                break
                            if attempt < a.retries:
                                log(f"    other processes used {res['other_cpu_pct']}% CPU; retrying")
                        if proc.poll() is not None:
                            log(f"  {srv.name} exited during {s}")
                        res = best
                        if res is None:
                            continue
                        results.setdefault((srv.name, s), []).append(res)
                        if jsonf:
                            jsonf.write(json.dumps({"server": srv.name, "scenario": s, "repeat": rep, **res}) + "\n")
                            jsonf.flush()
                        if proc.poll() is not None:
                            break
                finally:
                    stop(proc)
    finally:
        if jsonf:
            jsonf.close()
        try:
            os.unlink(log_path)
        except OSError:
            pass

    active = [s.name for s in servers if any((s.name, sc) in results for sc in scen)]
    for s in servers:
        if s.broken:
            print(f"> skipped {s.name}: {s.broken}\n")

    def med(name, sc, key="msg_per_s"):
        vals = [r[key] for r in results.get((name, sc), []) if r.get(key) is not None and not r.get("errors")]
        return statistics.median(vals) if vals else None

    if not active:
        print("No results (no server produced a measurement).")
        return 1

    print(f"Median msg/s over {a.repeat} run(s) of {a.duration:g} s (+{a.warmup:g} s warmup), "
          f"loadgen threads={a.threads}; ratio vs picows in parentheses.\n")
    print("| scenario | " + " | ".join(active) + " |")
    print("|---|" + "---|" * len(active))
    for sc in scen:
        base = med("picows", sc)
        cells = []
        for name in active:
            v = med(name, sc)
            cell = fmt_rate(v)
            if v is not None and base:
                cell += f" ({v / base:.2f}x)"
            n_err = sum(1 for r in results.get((name, sc), []) if r.get("errors"))
            if n_err:
                cell += f" [{n_err} run(s) with errors]"
            cells.append(cell)
        print(f"| {SCENARIOS[sc][0]} | " + " | ".join(cells) + " |")

    print("\nMedian CPU % during the window (server / loadgen / other processes; 100 = one core):\n")
    print("| scenario | " + " | ".join(active) + " |")
    print("|---|" + "---|" * len(active))
    for sc in scen:
        cells = []
        for name in active:
            sv, lv, ov = (med(name, sc, k) for k in ("server_cpu_pct", "cpu_pct", "other_cpu_pct"))
            cells.append(f"{sv:.0f} / {lv:.0f} / {ov:.0f}" if None not in (sv, lv, ov) else "n/a")
        print(f"| {SCENARIOS[sc][0]} | " + " | ".join(cells) + " |")
    noisy = sum(1 for rs in results.values() for r in rs if (r.get("other_cpu_pct") or 0) > a.max_other)
    if noisy:
        print(f"\n{noisy} kept run(s) still had more than {a.max_other:g}% CPU used by other processes "
              "(noisy machine); see --json output.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
