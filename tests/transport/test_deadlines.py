"""Deadlines start from the loop's clock, not from the housekeeping tick's
(possibly stale) time: a close timeout shorter than the tick never fires early."""

from __future__ import annotations

import asyncio

from _nethelpers import serving, wait_until, ws_raw

from hero_fast._transport import Connection


class Keep:
    def __init__(self) -> None:
        self.conns: list[Connection] = []

    def on_connect(self, conn: Connection) -> None:
        self.conns.append(conn)


def test_close_timeout_counts_from_the_close_not_the_last_tick(run) -> None:
    async def main() -> None:
        handler = Keep()
        async with serving(handler, tick=1.0, close_timeout=0.5) as server:
            loop = asyncio.get_running_loop()
            await ws_raw(server.port)  # a peer that will never answer our close
            await wait_until(lambda: len(handler.conns) == 1)
            conn = handler.conns[0]
            await asyncio.sleep(0.8)  # the tick's idea of "now" is ~0.8 s old here
            started = loop.time()
            conn.close(1000, "bye")
            await wait_until(lambda: conn not in server.connections, timeout=5)
            assert loop.time() - started >= 0.5
            assert server.counters["close_timeouts"] == 1

    run(main(), timeout=20)
