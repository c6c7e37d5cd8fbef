"""Stand-ins for the servers under test, for the tests of the load clients."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from websockets.asyncio.server import ServerConnection, serve


class ThreadedServer:
    """A websockets server running `handler` on its own thread and event loop: the stand-in for a
    server under test that a load client (a subprocess) talks to. `with` starts and stops it."""

    def __init__(self, handler: Callable[[ServerConnection], Awaitable[None]]) -> None:
        self.handler = handler
        self.port = 0
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(self.main()), daemon=True)

    async def main(self) -> None:
        self.stop_event = asyncio.Event()
        async with serve(self.handler, "127.0.0.1", 0, compression=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            await self.stop_event.wait()

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        assert self.ready.wait(10), "the fake server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.stop_event is not None
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)
