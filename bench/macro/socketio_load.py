"""Load client for the python-socketio peer (socket.io framing: the C loadgen cannot speak it).

Python asyncio on uvloop with python-socketio's AsyncClient (websocket transport only), so
the CLIENT MAY BE THE BOTTLENECK: the JSON line reports its own CPU ("cpu_pct") next to the
server's ("server_cpu_pct", with --server-pid); when cpu_pct is near 100 the number is a
lower bound for the server.

Modes (one JSON line on stdout, like loadgen):
  action  -c N clients, each with one `echo` call in flight        -> msg_per_s
  fanout  -c R receivers join a room; one sender emits bursts of -p `say`s and waits until
          every receiver got them (bounded by -T)                  -> deliveries_per_s

Every phase is bounded (connect timeout, -w warmup, -d measured seconds, -T per burst).

Usage: python bench/macro/socketio_load.py action -P PORT [-c 50] [-d 5] [-w 1]
       python bench/macro/socketio_load.py fanout -P PORT [-c 1000] [-p 16] [-d 5]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time

import socketio
from serverproc import client_main, raise_fd_limit


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_pid(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


async def connect_all(url: str, n: int, concurrency: int, timeout: float, setup=None) -> list:
    clients: list = []
    sem = asyncio.Semaphore(concurrency)

    async def one(i):
        async with sem:
            c = socketio.AsyncClient(reconnection=False)
            if setup:
                setup(c)
            await c.connect(url, transports=["websocket"], wait_timeout=10)
            clients.append(c)

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), timeout)
    return clients


async def run_action(a) -> dict:
    url = f"http://127.0.0.1:{a.port}"
    clients = await connect_all(url, a.conns, 50, a.timeout + a.conns * 0.05)
    count = 0
    errors = 0
    stop = False

    async def worker(c):
        nonlocal count, errors
        while not stop:
            try:
                r = await c.call("echo", {"x": 1}, timeout=a.timeout)
                if r == {"x": 1}:
                    count += 1
                else:
                    errors += 1
            except Exception:
                errors += 1
                return

    tasks = [asyncio.create_task(worker(c)) for c in clients]
    await asyncio.sleep(a.warmup)
    c0, t0, s0, sp0 = count, time.monotonic(), cpu_self(), cpu_pid(a.server_pid) if a.server_pid else None
    await asyncio.sleep(a.duration)
    c1, t1, s1, sp1 = count, time.monotonic(), cpu_self(), cpu_pid(a.server_pid) if a.server_pid else None
    stop = True
    await asyncio.wait(tasks, timeout=a.timeout + 1)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
    secs = t1 - t0
    out = {"mode": "socketio-action", "conns": a.conns, "inflight": 1, "seconds": round(secs, 3),
           "messages": c1 - c0, "msg_per_s": round((c1 - c0) / secs), "errors": errors,
           "cpu_pct": round(100 * (s1 - s0) / secs, 1)}
    if sp0 is not None and sp1 is not None:
        out["server_cpu_pct"] = round(100 * (sp1 - sp0) / secs, 1)
    return out


async def run_fanout(a) -> dict:
    url = f"http://127.0.0.1:{a.port}"
    got = 0
    target = 0
    done = asyncio.Event()

    def setup(c):
        @c.on("chat")
        def _on_chat(data):
            nonlocal got
            got += 1
            if got >= target:
                done.set()

    receivers = await connect_all(url, a.conns, 50, a.timeout + a.conns * 0.1, setup)
    await asyncio.wait_for(asyncio.gather(*(c.call("join", "benchroom", timeout=a.timeout)
                                            for c in receivers)), a.timeout)
    sender = socketio.AsyncClient(reconnection=False)
    await sender.connect(url, transports=["websocket"], wait_timeout=10)
    sent = 0
    timed_out = False

    async def burst():
        nonlocal sent, target, timed_out
        target = (sent + a.burst) * a.conns
        done.clear()
        for _ in range(a.burst):
            sent += 1
            await sender.emit("say", {"room": "benchroom", "message": f"BENCHMSG {sent}"})
        try:
            await asyncio.wait_for(done.wait(), a.timeout)
        except asyncio.TimeoutError:
            timed_out = True

    t_end = time.monotonic() + a.warmup
    while time.monotonic() < t_end and not timed_out:
        await burst()
    g0, n0, t0, s0 = got, sent, time.monotonic(), cpu_self()
    sp0 = cpu_pid(a.server_pid) if a.server_pid else None
    t_end = t0 + a.duration
    while time.monotonic() < t_end and not timed_out:
        await burst()
    g1, n1, t1, s1 = got, sent, time.monotonic(), cpu_self()
    sp1 = cpu_pid(a.server_pid) if a.server_pid else None
    await asyncio.gather(*(c.disconnect() for c in [*receivers, sender]), return_exceptions=True)
    secs = t1 - t0
    out = {"mode": "socketio-fanout", "receivers": a.conns, "burst": a.burst, "sent": n1 - n0,
           "deliveries": g1 - g0, "seconds": round(secs, 3),
           "deliveries_per_s": round((g1 - g0) / secs), "msg_per_s": round((g1 - g0) / secs),
           "errors": 1 if timed_out else 0, "timed_out": timed_out,
           "cpu_pct": round(100 * (s1 - s0) / secs, 1)}
    if sp0 is not None and sp1 is not None:
        out["server_cpu_pct"] = round(100 * (sp1 - sp0) / secs, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["action", "fanout"])
    ap.add_argument("-P", "--port", type=int, required=True)
    ap.add_argument("-c", "--conns", type=int, default=None, help="clients / receivers [50 / 1000]")
    ap.add_argument("-p", "--burst", type=int, default=16, help="fanout: says per burst [16]")
    ap.add_argument("-d", "--duration", type=float, default=5.0)
    ap.add_argument("-w", "--warmup", type=float, default=1.0)
    ap.add_argument("-T", "--timeout", type=float, default=10.0)
    ap.add_argument("-S", "--server-pid", type=int, default=0)
    a = ap.parse_args()
    if a.conns is None:
        a.conns = 50 if a.mode == "action" else 1000
    if not (1 <= a.conns <= 5000 and 1 <= a.burst <= 1000 and 0 < a.duration <= 600
            and 0 <= a.warmup <= 600 and 0 < a.timeout <= 120):
        ap.error("out of range: conns 1..5000, burst 1..1000, duration 0..600, warmup 0..600, timeout 0..120")
    raise_fd_limit()
    coro = run_action(a) if a.mode == "action" else run_fanout(a)
    return client_main("socketio_load", coro, a.warmup + a.duration + 3 * a.timeout + a.conns * 0.2 + 30)


if __name__ == "__main__":
    sys.exit(main())
