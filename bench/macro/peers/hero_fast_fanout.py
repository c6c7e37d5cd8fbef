"""hero-fast engine fan-out server: every text message any connection sends is framed once
(`encode_frame`) and handed to every connection (the sender included) with the engine's
`fanout`, which queues the same bytes on each and flushes each connection once per loop
iteration. No rooms, no JSON: the engine's share of a room `say`, comparable with the C
broadcast server (bench/macro/epoll_server.c broadcast) and the picows/websockets fan-out peers.

Compatible with `loadgen fanout` without -J: receivers connect first and stay silent, the
sender's frames reach everyone; count them with -k MARK.

Usage: python bench/macro/peers/hero_fast_fanout.py --port N [--host 127.0.0.1]
"""
from __future__ import annotations

import asyncio

from _cli import run_peer

from hero_fast._core import encode_frame
from hero_fast._transport import Connection, fanout, serve

TEXT = 1


class Broadcast:
    def __init__(self) -> None:
        self.conns: set[Connection] = set()

    def on_connect(self, conn: Connection) -> None:
        self.conns.add(conn)

    def on_close(self, conn: Connection, code: int, reason: str) -> None:
        self.conns.discard(conn)

    def on_message(self, conn: Connection, message: str | bytes) -> None:
        if isinstance(message, str):
            fanout(encode_frame(TEXT, message), self.conns)


async def main(host: str, port: int) -> None:
    await serve(Broadcast(), host, port)
    print(f"hero-fast engine fan-out listening on {host}:{port}", flush=True)
    await asyncio.Event().wait()  # until SIGTERM ends the process


if __name__ == "__main__":
    run_peer(main)
