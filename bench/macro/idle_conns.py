"""Idle-memory probe: RSS per idle WebSocket connection of a running server.

Opens --warm connections (handshake done), reads the server's VmRSS from /proc/PID/status,
opens --conns more (so --warm + --conns at the end... see --total), waits --settle s, reads
VmRSS again: KiB per connection = (after - before) / added. The client is raw asyncio on
uvloop (one Protocol per socket, reads and discards), raises its own fd limit to the hard
limit; the server must have been started with a high enough limit (its parent's).
Connections are closed at the end. Bounded by --timeout.

Usage: python bench/macro/idle_conns.py -P PORT -S SERVER_PID [-n 10000] [-u /primus]
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import time

from serverproc import client_main, raise_fd_limit, rss_kib


class Idle(asyncio.Protocol):
    def __init__(self, req: bytes, fut: asyncio.Future):
        self.req = req
        self.fut = fut
        self.buf = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.req)

    def data_received(self, data):
        if self.fut.done():
            return  # frames after the handshake (welcome, pings) are ignored
        self.buf += data
        if b"\r\n\r\n" in self.buf:
            ok = self.buf.startswith(b"HTTP/1.1 101")
            self.buf = b""
            self.fut.set_result(ok) if ok else self.fut.set_exception(
                RuntimeError("handshake rejected"))

    def connection_lost(self, exc):
        if not self.fut.done():
            self.fut.set_exception(ConnectionError("closed during handshake"))


async def open_many(loop, port: int, path: str, n: int, batch: int, out: list) -> int:
    failed = 0
    for start in range(0, n, batch):
        futs, tasks = [], []
        for _ in range(min(batch, n - start)):
            key = base64.b64encode(os.urandom(16)).decode()
            req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
            fut = loop.create_future()
            futs.append(fut)
            tasks.append(loop.create_connection(lambda r=req, f=fut: Idle(r, f), "127.0.0.1", port))
        res = await asyncio.gather(*tasks, return_exceptions=True)
        for r in res:
            if isinstance(r, Exception):
                failed += 1
            else:
                out.append(r[0])
        done = await asyncio.gather(*(asyncio.wait_for(f, 10) for f in futs), return_exceptions=True)
        failed += sum(1 for d in done if d is not True) - sum(1 for r in res if isinstance(r, Exception))
    return failed


async def run(a) -> dict:
    loop = asyncio.get_running_loop()
    transports: list = []
    t0 = time.monotonic()
    failed = await open_many(loop, a.port, a.path, a.warm, a.batch, transports)
    await asyncio.sleep(a.settle)
    before = rss_kib(a.server_pid)
    failed += await open_many(loop, a.port, a.path, a.conns - a.warm, a.batch, transports)
    t_open = time.monotonic() - t0
    await asyncio.sleep(a.settle)
    after = rss_kib(a.server_pid)
    added = a.conns - a.warm - failed
    for t in transports:
        t.close()
    await asyncio.sleep(0.2)
    return {"mode": "idle", "conns": a.conns, "warm": a.warm, "added": added, "failed": failed,
            "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_conn": round((after - before) / added, 2) if added > 0 else None,
            "open_seconds": round(t_open, 2), "errors": failed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-P", "--port", type=int, required=True)
    ap.add_argument("-S", "--server-pid", type=int, required=True)
    ap.add_argument("-n", "--conns", type=int, default=10000, help="connections in total [10000]")
    ap.add_argument("--warm", type=int, default=100, help="opened before the first RSS reading [100]")
    ap.add_argument("-u", "--path", default="/")
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()
    if not (1 <= a.warm < a.conns <= 19000 and 1 <= a.batch <= 2000 and 0 <= a.settle <= 60):
        ap.error("need 1 <= warm < conns <= 19000, batch 1..2000, settle 0..60")
    hard = raise_fd_limit()
    if hard < a.conns + 100:
        print(f"idle_conns: fd hard limit {hard} < {a.conns + 100}", file=sys.stderr)
        return 1
    return client_main("idle_conns", run(a), a.timeout)


if __name__ == "__main__":
    sys.exit(main())
