"""Room fan-out across processes: deliveries/s with the receivers on 1 process vs 2.

One sender says into a room whose members (``--receivers``, default 500) are connected to
one server process or spread evenly over two (each a cluster node on Redis; the sender is
on the first). Scenarios:

- ``memory-1``: one process, the default in-memory backend (the embedded baseline);
- ``redis-1``:  one process with ``redis_url`` set (every say is also published);
- ``redis-2``:  two processes, receivers split half/half; the second process gets each
  message from Redis pub/sub and fans it out to its own half;
- ``redis-2-signed``: the same with ``cluster.secret`` set (every bus message signed and
  checked); not in the default set, ask for it with ``--scenario``;
- ``redis-1-history``, ``redis-2-history``: ``redis-1`` and ``redis-2`` in a room with
  history (``{"size": 1000, "ttl": 60000}``): every say numbered and kept in Redis by a Lua
  script, delivered from the bus on every node (the sender's too); ask for them with
  ``--scenario``. The room's offsets start at 1,000,000 so that every frame has the same
  length.

The sender keeps ``--window`` bursts of ``--burst`` messages in flight: it sends the next
burst once every receiver has everything but the last ``window - 1`` bursts (so no queue
grows without bound). Receivers are raw asyncio protocols in this process that count
bytes (every chat frame has the same length, measured once at calibration), so the load
side costs little per delivery. Every wait is bounded; servers are stopped by PID.

Usage::

    python bench/cluster/run.py                       # all three scenarios
    python bench/cluster/run.py --receivers 1000 --seconds 5 --repeat 3
    python bench/cluster/run.py --scenario redis-2 --redis-url redis://127.0.0.1:6379/0

Prints a markdown table (median over repeats) to stdout; progress goes to stderr.
Note: on a 2-core machine the load generator, Redis and both servers share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ROOM = "bench"
# name → (processes, on Redis, bus signed with cluster.secret, room with history)
SCENARIOS = {"memory-1": (1, False, False, False), "redis-1": (1, True, False, False),
             "redis-2": (2, True, False, False), "redis-2-signed": (2, True, True, False),
             "redis-1-history": (1, True, False, True), "redis-2-history": (2, True, False, True)}
HISTORY = {"size": 1000, "ttl": 60000}


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- servers ------------------------------------------------------------------------------------


class Server:
    def __init__(self, project: Path, redis_url: str | None, prefix: str, src: Path, signed: bool = False,
                 history: bool = False) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HERO_FAST")}
        env.update({
            "HERO_FAST__servers__websocket__server__pingInterval": "0",
            "HERO_FAST__general__startingChatRooms": json.dumps({ROOM: {"history": HISTORY} if history else {}}),
            "HERO_FAST__logging__accessLog": "false",
            # the sender is a load generator: lift the per-connection message rate limit
            "HERO_FAST__servers__websocket__maxMessagesPerSecond": "0",
            "HERO_FAST__cluster__prefix": json.dumps(prefix),
        })
        if signed:
            env["HERO_FAST__cluster__secret"] = json.dumps("bench-secret-" + prefix)
        env["PYTHONPATH"] = str(src) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        cmd = [sys.executable, "-m", "hero_fast.cli", "serve", "--project", str(project), "--port",
               str(self.port), "--log-level", "warning"]
        if redis_url:
            cmd += ["--redis-url", redis_url]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("server did not start within 20 s") from None
                time.sleep(0.05)

    def cpu_seconds(self) -> float:
        return proc_cpu(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of a process, from /proc (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


async def redis_server_pid(url: str) -> int | None:
    """The Redis server's pid when it runs on this machine (INFO server), else None."""
    sys.path.insert(0, str(REPO / "src"))
    from hero_fast.cluster.resp import open_connection, parse_redis_url

    conn = await open_connection(parse_redis_url(url), timeout=5)
    try:
        info = (await conn.execute(b"INFO", b"server")).decode()
    finally:
        conn.abort()
    for line in info.splitlines():
        if line.startswith("process_id:"):
            pid = int(line.split(":", 1)[1])
            return pid if os.path.exists(f"/proc/{pid}") else None
    return None


# -- raw WebSocket clients ----------------------------------------------------------------------


def client_frame(text: bytes) -> bytes:
    """A masked text frame (mask of zeros: the payload is sent as is)."""
    n = len(text)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 65536:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\x00\x00\x00\x00" + text


def parse_frames(buf: bytearray) -> list[bytes]:
    """Complete unmasked server frames at the front of ``buf`` (consumed)."""
    out = []
    while len(buf) >= 2:
        n = buf[1] & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                break
            n, pos = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, pos = int.from_bytes(buf[2:10], "big"), 10
        if len(buf) < pos + n:
            break
        out.append(bytes(buf[pos:pos + n]))
        del buf[:pos + n]
    return out


class Bench:
    def __init__(self) -> None:
        self.total = 0  # bytes received by all receivers while counting
        self.threshold = 1 << 62
        self.event = asyncio.Event()


class WsPeer(asyncio.Protocol):
    """Upgrade, join the room, then (receivers) count bytes."""

    def __init__(self, bench: Bench, port: int, counting: bool) -> None:
        self.bench = bench
        self.port = port
        self.counting_role = counting
        self.state = "handshake"
        self.buf = bytearray()
        self.joined = asyncio.get_running_loop().create_future()
        self.messages: list[bytes] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET /primus HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                         ).encode())

    def data_received(self, data: bytes) -> None:
        if self.state == "count":
            b = self.bench
            b.total += len(data)
            if b.total >= b.threshold:
                b.event.set()
            return
        self.buf += data
        if self.state == "handshake":
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self.joined.set_exception(RuntimeError(bytes(self.buf[:80]).decode(errors="replace")))
                return
            del self.buf[:end + 4]
            self.state = "setup"
            self.transport.write(client_frame(json.dumps({"event": "roomAdd", "room": ROOM, "messageId": 1}).encode()))
        for msg in parse_frames(self.buf):
            if self.state == "setup" and b'"context":"response"' in msg:
                if b'"status":"OK"' not in msg:
                    self.joined.set_exception(RuntimeError(msg.decode(errors="replace")))
                    return
                self.state = "count" if self.counting_role else "sender"
                self.joined.set_result(None)
                if self.counting_role and self.buf:
                    self.bench.total += len(self.buf)
                    self.buf.clear()
            elif self.state == "sender":
                self.messages.append(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(f"closed during setup: {exc}"))


async def run_scenario(name: str, args: argparse.Namespace, project: Path) -> dict[str, Any]:
    processes, use_redis, signed, history = SCENARIOS[name]
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    servers: list[Server] = []
    peers: list[WsPeer] = []
    loop = asyncio.get_running_loop()
    try:
        if history:
            await start_numbering(args.redis_url, prefix, 1_000_000)
        for _ in range(processes):
            servers.append(Server(project, args.redis_url if use_redis else None, prefix, args.src, signed, history))
        bench = Bench()
        # receivers: round-robin over the servers
        for i in range(args.receivers):
            port = servers[i % processes].port
            _, peer = await loop.create_connection(lambda p=port: WsPeer(bench, p, True), "127.0.0.1", port)
            peers.append(peer)
            if len(peers) % 100 == 0:
                await asyncio.wait_for(asyncio.gather(*(p.joined for p in peers[-100:])), 30)
        await asyncio.wait_for(asyncio.gather(*(p.joined for p in peers)), 30)
        _, sender = await loop.create_connection(lambda: WsPeer(bench, servers[0].port, False), "127.0.0.1",
                                                 servers[0].port)
        await asyncio.wait_for(sender.joined, 10)

        text = ("x" * args.size)
        say = client_frame(json.dumps({"event": "say", "room": ROOM, "message": text, "messageId": 1}).encode())
        # calibration: the length of one delivered frame, and every receiver gets it
        sender.transport.write(say)
        deadline = time.monotonic() + 10
        while not any(b'"context":"user"' in m for m in sender.messages):
            if time.monotonic() > deadline:
                raise RuntimeError("calibration message not received by the sender")
            await asyncio.sleep(0.01)
        payload = next(m for m in sender.messages if b'"context":"user"' in m)
        frame_len = len(payload) + (2 if len(payload) < 126 else 4)
        sender.messages.clear()
        bench.threshold = args.receivers * frame_len
        bench.event.clear()
        try:
            if bench.total < bench.threshold:
                await asyncio.wait_for(bench.event.wait(), 10)
        except asyncio.TimeoutError:
            raise RuntimeError(f"calibration: {bench.total} bytes after 10 s, expected "
                               f"{args.receivers * frame_len} (frame {frame_len} B)") from None
        if bench.total != args.receivers * frame_len:
            raise RuntimeError(f"calibration: {bench.total} bytes, expected {args.receivers * frame_len}")

        per_msg = args.receivers * frame_len
        burst = say * args.burst
        sent = 1
        measure_from = time.monotonic() + args.warmup
        end = measure_from + args.seconds
        start_bytes = start_time = None
        cpu0: list[float] = []
        load0 = redis0 = 0.0
        redis_pid = await redis_server_pid(args.redis_url) if use_redis else None
        while True:
            now = time.monotonic()
            if start_time is None and now >= measure_from:
                start_bytes, start_time = bench.total, now
                cpu0 = [s.cpu_seconds() for s in servers]
                load0, redis0 = time.process_time(), proc_cpu(redis_pid)
            if now >= end:
                break
            sender.transport.write(burst)
            sent += args.burst
            sender.messages.clear()
            # wait until every receiver has all but the last (window - 1) bursts
            bench.threshold = (sent - (args.window - 1) * args.burst) * per_msg
            bench.event.clear()
            if bench.total < bench.threshold:
                try:
                    await asyncio.wait_for(bench.event.wait(), 20)
                except asyncio.TimeoutError:
                    raise RuntimeError(
                        f"deliveries stalled: {bench.total / frame_len:,.0f} of {bench.threshold / frame_len:,.0f} "
                        f"frames after {sent} messages (dropped by the server? see servers.websocket.slowConsumer)"
                    ) from None
        stop_time, stop_bytes = time.monotonic(), bench.total
        cpu = [s.cpu_seconds() - c for s, c in zip(servers, cpu0, strict=True)]
        load_cpu, redis_cpu = time.process_time() - load0, proc_cpu(redis_pid) - redis0
        assert start_time is not None and start_bytes is not None
        elapsed = stop_time - start_time
        deliveries = (stop_bytes - start_bytes) / frame_len
        return {
            "scenario": name, "processes": processes, "receivers": args.receivers,
            "deliveries_per_s": deliveries / elapsed, "msgs_per_s": deliveries / args.receivers / elapsed,
            "server_cpu_pct": [round(100 * c / elapsed) for c in cpu],
            "server_us_per_delivery": 1e6 * sum(cpu) / deliveries,
            "load_cpu_pct": round(100 * load_cpu / elapsed),
            "redis_cpu_pct": round(100 * redis_cpu / elapsed) if redis_pid else None,
        }
    finally:
        for p in peers:
            if p.transport is not None:
                p.transport.abort()
        for s in servers:
            s.stop()
        if use_redis:
            await cleanup_redis(args.redis_url, prefix)


async def start_numbering(url: str, prefix: str, offset: int) -> None:
    """Give the bench room an epoch whose offsets start at ``offset`` (frames of one length)."""
    sys.path.insert(0, str(REPO / "src"))
    from hero_fast.cluster.resp import open_connection, parse_redis_url

    conn = await open_connection(parse_redis_url(url), timeout=5)
    try:
        await conn.execute(b"SET", f"{prefix}he:{ROOM}".encode(), b"0123456789abcdef")
        await conn.execute(b"SET", f"{prefix}ho:{ROOM}".encode(), offset)
    finally:
        conn.abort()


async def cleanup_redis(url: str, prefix: str) -> None:
    sys.path.insert(0, str(REPO / "src"))
    from hero_fast.cluster.resp import open_connection, parse_redis_url

    conn = await open_connection(parse_redis_url(url), timeout=5)
    try:
        cursor = b"0"
        while True:
            cursor, keys = await conn.execute(b"SCAN", cursor, b"MATCH", prefix.encode() + b"*", b"COUNT", 1000)
            if keys:
                await conn.execute(b"DEL", *keys)
            if cursor == b"0":
                break
    finally:
        conn.abort()


async def main_async(args: argparse.Namespace) -> int:
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "public").mkdir()
        for rep in range(args.repeat):
            for name in args.scenario:
                log(f"[{rep + 1}/{args.repeat}] {name}: {args.receivers} receivers ...")
                r = await run_scenario(name, args, project)
                log(f"  {r['deliveries_per_s']:,.0f} deliveries/s ({r['msgs_per_s']:,.0f} msg/s), "
                    f"server CPU {r['server_cpu_pct']}%, load {r['load_cpu_pct']}%, redis {r['redis_cpu_pct']}%")
                results.setdefault(name, []).append(r)
    base = statistics.median(r["deliveries_per_s"] for r in results[args.scenario[0]])
    print(f"\nRoom fan-out, 1 sender → {args.receivers} receivers, {args.size} B messages, burst "
          f"{args.burst} x window {args.window}, median of {args.repeat}, {os.cpu_count()} CPUs\n")
    print(f"| scenario | processes | deliveries/s | messages/s | server CPU % | server CPU µs / delivery "
          f"| load gen CPU % | redis CPU % | vs {args.scenario[0]} |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.scenario:
        rs = results[name]
        d = statistics.median(r["deliveries_per_s"] for r in rs)
        m = statistics.median(r["msgs_per_s"] for r in rs)
        mid = sorted(rs, key=lambda r: r["deliveries_per_s"])[len(rs) // 2]
        cpu = " + ".join(map(str, mid["server_cpu_pct"]))
        redis_cpu = "-" if mid["redis_cpu_pct"] is None else mid["redis_cpu_pct"]
        us = statistics.median(r["server_us_per_delivery"] for r in rs)
        print(f"| {name} | {rs[0]['processes']} | {d:,.0f} | {m:,.0f} | {cpu} | {us:.3f} | {mid['load_cpu_pct']} "
              f"| {redis_cpu} | {d / base:.2f}x |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--redis-url", default=os.environ.get("HERO_FAST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--receivers", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--src", type=Path, default=REPO / "src",
                        help="source tree the servers import hero_fast from (for A/B runs; default: this repo's)")
    args = parser.parse_args()
    args.scenario = args.scenario or ["memory-1", "redis-1", "redis-2"]
    try:
        import uvloop
        return uvloop.run(main_async(args))
    except ImportError:
        return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
