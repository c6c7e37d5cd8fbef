"""hero-fast bench suite: every macro scenario with the limits and the peers side by side
(`make bench`; the machinery is in bench/suite/).

Builds bench/macro (the C load generator and the C epoll limit server), builds the Node.js
actionhero peer once (bench/peers/actionhero/setup.sh), starts a private redis-server for the
rows that go through Redis, then for each repeat and each server (order rotated per repeat):
start it on a free loopback port, run its scenarios, stop it by PID. Afterwards: idle memory at
10,000 connections, issue 12's recovery bench (skipped until the server supports it), server
syscalls per message (perf stat, a separate pass), py-spy profiles of hero-fast for every missed
target, bench/RESULTS.md, bench/chart.png and the
summary in docs/benchmarks.md.

Scenarios (C loadgen unless noted; rows: hero-fast, limits, peers):
  echo64x16    echo 64 B, 100 conns x 16 in flight   hero-fast echo | C epoll, raw uvloop | picows,
  echo64x1     echo 64 B, 100 conns x 1 in flight      websockets, aiohttp
  echo16k      echo 16 KiB, 10 conns x 4 in flight
  action-noid  echo action, 50 conns x 1, no messageId   hero-fast serve (also +redis) | actionhero
  action       the same with a messageId
  fanout       1 sender -> 1,000 receivers, every frame to everyone   hero-fast engine | C epoll
               broadcast | picows (one send per message per receiver), websockets broadcast()
  roomfanout   1 -> 1,000 through roomAdd + say   hero-fast serve (also +redis, +history) | actionhero
  socketio     python-socketio: action and fan-out with a Python client (own rows)
  idle         server RSS per idle WebSocket at 10,000 connections: hero-fast, actionhero, picows
  recovery     issue 12: 1,000 clients aborted server-side reconnect with recovery

Bounded: every subprocess has a timeout; no new work starts past --budget (default 840 s full,
230 s --quick), and RESULTS.md lists what was skipped. --quick measures idle memory of hero-fast
only (its target), not of the peers.

Usage: python bench/run_all.py [--quick] [--repeat N] [--duration S] [--skip actionhero,...]
       [--redis-url URL]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "macro"))

from serverproc import raise_fd_limit  # noqa: E402
from suite import chart, profiling, report, servers, syscalls  # noqa: E402
from suite.privateredis import PrivateRedis, forget_keys  # noqa: E402
from suite.runner import T0, Runner, log  # noqa: E402
from suite.targets import evaluate  # noqa: E402

SKIPPABLE = "actionhero,redis,socketio,idle,syscalls,profile,echo,action,fanout,history,recovery"


def args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="~3 minutes: 1 repeat, short windows")
    ap.add_argument("--repeat", type=int, help="repeats (medians) [3; quick 1]")
    ap.add_argument("--duration", type=float, help="measured seconds per run [3; quick 1.5]")
    ap.add_argument("--warmup", type=float, help="warmup seconds per run [1; quick 0.5]")
    ap.add_argument("--budget", type=float, help="seconds after which no new work starts [840; quick 230]")
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--skip", default="", help=f"comma list of: {SKIPPABLE}")
    ap.add_argument("--redis-url", help="Redis for the hero-fast+redis rows instead of the private one "
                                        "(a key prefix of the run's own keeps it apart from other users)")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--chart", default=os.path.join(HERE, "chart.png"))
    ap.add_argument("--no-docs", action="store_true", help="do not write the summary into docs/benchmarks.md")
    a = ap.parse_args()
    q = a.quick
    a.repeat = a.repeat or (1 if q else 3)
    a.duration = a.duration or (1.5 if q else 3.0)
    a.warmup = a.warmup if a.warmup is not None else (0.5 if q else 1.0)
    a.budget = a.budget or (230.0 if q else 840.0)
    a.skip = set(filter(None, a.skip.split(",")))
    if a.skip - set(SKIPPABLE.split(",")):
        ap.error(f"--skip takes: {SKIPPABLE}")
    if not (1 <= a.repeat <= 10 and 0 < a.duration <= 30 and 0 <= a.warmup <= 10 and 30 <= a.budget <= 3600):
        ap.error("repeat 1..10, duration 0..30, warmup 0..10, budget 30..3600")
    return a


def main() -> int:
    a = args()
    raise_fd_limit()  # inherited by the servers
    workdir = tempfile.mkdtemp(prefix="hero-fast-bench-")
    log(f"work dir {workdir}")
    subprocess.run(["make", "-s", "-C", os.path.join(HERE, "macro")], check=True, timeout=120)

    notes: list[str] = []
    actionhero = "actionhero" not in a.skip
    why = servers.actionhero_possible() if actionhero else None
    if why:
        notes.append(f"actionhero skipped: {why}")
        actionhero = False
    if actionhero:
        log("actionhero peer: setup.sh")
        try:
            r = subprocess.run(["bash", os.path.join(servers.AH_DIR, "setup.sh")], capture_output=True, text=True,
                               timeout=900)
            if r.returncode != 0:
                notes.append(f"actionhero setup failed: {r.stderr.strip()[-300:]}")
                actionhero = False
        except subprocess.TimeoutExpired:
            notes.append("actionhero setup timed out (900 s)")
            actionhero = False

    redis = None
    if actionhero or ("redis" not in a.skip and not a.redis_url):
        redis = PrivateRedis(workdir) if PrivateRedis.available() else None
        if redis is None or not redis.start():
            notes.append("no redis-server could be started: no actionhero or hero-fast+redis rows")
            if redis:
                redis.stop()
            redis, actionhero = None, False
    hf_redis_url = None if "redis" in a.skip else (a.redis_url or (redis.url if redis else None))
    plan = servers.plan(workdir, a.skip, redis, hf_redis_url, actionhero, a.quick)

    run = Runner(a, plan, workdir, redis)
    run.out.notes += notes
    profiles: dict = {}
    calls: dict = {}
    try:
        run.jobs()
        run.idle()
        run.recovery()
        if "syscalls" not in a.skip and run.time_left() > 30:
            calls = syscalls.measure(plan, a.quick, workdir, run.out.notes)
        if "profile" not in a.skip:
            profiling.clear()
            missed = {e["target"].num: None for e in evaluate(run.out.results) if e["met"] is False}
            for key in missed:
                srv = plan.by_row.get(key)
                if srv is None:  # idle memory, recovery: no load to profile under
                    continue
                if run.time_left() < 15:
                    run.out.skipped.append(f"profile {key[0]} on {key[1]} (time budget)")
                    continue
                profiles[key] = profiling.profile(srv, key[0], a.quick, workdir, redis, run.out.notes)
    finally:
        if redis:
            redis.stop()
        if hf_redis_url and not (redis and hf_redis_url == redis.url):
            log(f"deleted {forget_keys(hf_redis_url, servers.REDIS_PREFIX)} key(s) under {servers.REDIS_PREFIX} "
                f"from {hf_redis_url}")

    block = report.write(a.out, a, run.out, profiles, plan, calls, workdir)
    if not a.no_docs and not report.sync_docs(block):
        log("docs/benchmarks.md has no summary markers: not updated")
    chart.draw(a.chart, evaluate(run.out.results))
    log(f"wrote {a.out} and {a.chart} in {time.monotonic() - T0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
