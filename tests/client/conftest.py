"""A fake hero-fast server for the client's unit tests.

Built from the project's own codec in server mode over a real loopback socket: it speaks
just enough of PROTOCOL.md (handshake, welcome, a few verbs and actions, Primus strings) and
records what the client sent. Every test runs on both the default asyncio loop and uvloop.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from hero_fast._core import (
    Codec,
    HandshakeError,
    build_accept_response,
    build_http_response,
    check_upgrade_request,
    encode_close,
    encode_frame,
)

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    factories: dict[str, Any] = {"asyncio": asyncio.new_event_loop}
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


OP_TEXT, OP_CONT, OP_PING = 1, 0, 9


class FakeConn:
    """One accepted WebSocket on the fake server."""

    def __init__(
        self, server: FakeServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.codec = Codec(is_client=False, max_message_size=64 << 20)
        self.id = os.urandom(8).hex()
        self.token = os.urandom(32).hex()  # the recovery token its welcome carries (recovery=True)
        self.received: list[Any] = []  # decoded JSON (or raw text / bytes when not JSON)
        self.close_code: int | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    # -- sending -------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def send_json(self, obj: Any) -> None:
        self.write(self.codec.send_message(orjson.dumps(obj).decode()))

    def respond(self, request: dict[str, Any], **fields: Any) -> None:
        self.send_json({**fields, "context": "response", "messageId": request.get("messageId")})

    def close(self, code: int = 1000) -> None:
        self.write(self.codec.close(code))

    def abort(self) -> None:
        self.writer.transport.abort()

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            fn()

        t = asyncio.ensure_future(run())
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    # -- receiving -----------------------------------------------------------
    async def run(self) -> None:
        while True:
            data = await self.reader.read(65536)
            if not data:
                break
            events = self.codec.receive_data(data) or []
            for ev in events:
                if ev[0] == "text":
                    self.on_text(ev[1])
                elif ev[0] == "binary":
                    self.received.append(ev[1])
                elif ev[0] == "close":
                    self.close_code = ev[1]
                    self.server.close_codes.append(ev[1])
            out = self.codec.data_to_send()
            if out:
                self.write(out)
            if self.codec.state >= 2:
                if self.server.ignore_close and self.codec.state == 2:
                    await self.server.stopping.wait()
                self.writer.close()
                break

    def on_text(self, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.received.append(text)
            return
        self.received.append(msg)
        if isinstance(msg, str):
            if msg.startswith("primus::pong::"):
                self.server.pongs.append(msg[14:])
            elif msg == "primus::id::":
                self.send_json("primus::id::" + self.id)
            return
        if not isinstance(msg, dict):
            return
        handler = self.server.handlers.get(msg.get("event"))
        if handler is not None:
            handler(self, msg)
            return
        event = msg.get("event")
        if event == "action":
            self.on_action(msg)
        elif event == "say":
            ack = {"status": "OK", "context": "response", "messageId": msg.get("messageId")}
            chat = {
                "message": msg.get("message"),
                "room": msg.get("room"),
                "from": self.id,
                "context": "user",
                "sentAt": int(time.time() * 1000),
            }
            first, second = (chat, ack) if self.server.say_message_first else (ack, chat)
            self.send_json(first)
            self.send_json(second)
        elif event == "detailsView":
            self.respond(msg, status="OK", data={"id": self.id, "fingerprint": "fp", "rooms": []})
        elif event in ("quit", "exit"):
            self.send_json("primus::server::close")
            self.close(1000)
        elif event in ("roomAdd", "roomLeave", "roomView", "file", "documentation"):
            self.respond(msg, status="OK", data={k: v for k, v in msg.items() if k != "messageId"})
        else:
            self.respond(
                msg,
                status=f"Error: verb not found or not allowed ({event})",
                error=f"Error: verb not found or not allowed ({event})",
            )

    def on_action(self, msg: dict[str, Any]) -> None:
        params = msg.get("params") or {}
        name = params.get("action")
        if name == "echo":
            self.respond(msg, echo=params)
        elif name == "sleep":  # answer after params["ms"] milliseconds
            self.later(params.get("ms", 0) / 1000, lambda: self.respond(msg, slept=params.get("ms")))
        elif name == "silent":  # never answers
            pass
        elif name == "drop":  # the connection dies without a close frame
            self.abort()
        elif name == "big":  # a large answer in fragments, a ping between them, split writes
            body = orjson.dumps(
                {"data": "x" * params["size"], "context": "response", "messageId": msg.get("messageId")}
            )
            n = params.get("fragments", 4)
            step = -(-len(body) // n)
            chunks = [body[i : i + step] for i in range(0, len(body), step)]
            wire = b""
            for i, chunk in enumerate(chunks):
                wire += encode_frame(OP_TEXT if i == 0 else OP_CONT, chunk, fin=i == len(chunks) - 1)
                if i == 0:
                    wire += encode_frame(OP_PING, b"hb")
            self.write(wire)
        elif name == "fail":
            self.respond(msg, error="boom")
        else:
            self.respond(msg, error="unknown action or invalid apiVersion")


class FakeServer:
    """``await FakeServer(...).start()``; ``url``; ``conns``; ``requests`` (the upgrade
    requests as (method, target, headers)); ``pongs``; ``close_codes``. ``recovery=True``:
    the welcome carries a recovery token (``conn.token``); ``handlers`` answer verbs."""

    def __init__(
        self,
        *,
        refuse: tuple[int, list[tuple[str, str]], bytes] | None = None,
        accept_override: Callable[[str], bytes] | None = None,
        welcome: bool = True,
        silent: bool = False,
        dribble: bool = False,
        say_message_first: bool = False,
        ignore_close: bool = False,
        recovery: bool = False,
    ) -> None:
        self.refuse = refuse
        self.recovery = recovery
        self.accept_override = accept_override
        self.welcome = welcome
        self.silent = silent
        self.dribble = dribble
        self.say_message_first = say_message_first
        self.ignore_close = ignore_close
        self.handlers: dict[str, Callable[[FakeConn, dict[str, Any]], None]] = {}
        self.requests: list[tuple[str, str, list[tuple[str, str]]]] = []
        self.conns: list[FakeConn] = []
        self.pongs: list[str] = []
        self.close_codes: list[int] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self.stopping = asyncio.Event()

    async def start(self) -> FakeServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.server.close()
        self.stopping.set()
        for w in self._writers:
            w.transport.abort()
        for c in self.conns:
            for t in list(c.tasks):
                t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip().lower(), value.strip()))
        self.requests.append((method, target, headers))
        if self.silent:
            await self.stopping.wait()
            return
        if self.refuse is not None:
            status, extra, body = self.refuse
            writer.write(build_http_response(status, [*extra, ("Content-Length", str(len(body)))], body))
            await writer.drain()
            await asyncio.sleep(0.05)
            return
        try:
            key, _, _ = check_upgrade_request(method, version.removeprefix("HTTP/"), headers)
        except HandshakeError as exc:
            writer.write(build_http_response(exc.status, exc.headers, exc.reason.encode()))
            return
        conn = FakeConn(self, reader, writer)
        self.conns.append(conn)
        response = self.accept_override(key) if self.accept_override else build_accept_response(key)
        if self.welcome:
            welcome: dict[str, Any] = {"welcome": "Hello! Welcome to the fake server", "context": "api"}
            if self.recovery:
                welcome["recovery"] = {"token": conn.token, "ttl": 120000}
            response += conn.codec.send_message(orjson.dumps(welcome).decode())
        if self.dribble:  # one byte per write: the client must reassemble everything
            for i in range(len(response)):
                writer.write(response[i : i + 1])
                await writer.drain()
                await asyncio.sleep(0)
        else:
            writer.write(response)
        await conn.run()


@pytest.fixture
async def fake() -> AsyncIterator[Callable[..., Awaitable[FakeServer]]]:
    servers: list[FakeServer] = []

    async def start(**kwargs: Any) -> FakeServer:
        s = await FakeServer(**kwargs).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        await s.stop()


async def eventually(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[None]]:
    return eventually


__all__ = ["FakeConn", "FakeServer", "encode_close"]
