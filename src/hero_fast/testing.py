"""Test a project in-process: its config, initializers, middleware, actions, routes and chat
rooms, with WebSocket-like connections that keep everything they are sent.

::

    # tests/test_chat.py  (pytest with pytest-asyncio, asyncio_mode = "auto")
    from pathlib import Path
    from hero_fast.testing import TestApi

    PROJECT = Path(__file__).parent.parent

    async def test_say_reaches_the_room():
        async with TestApi(PROJECT) as api:          # boots: initializers run, rooms exist
            alice, bob = api.connect(), api.connect()
            await alice.room_add("defaultRoom")
            await bob.room_add("defaultRoom")
            await alice.say("defaultRoom", "hello")
            assert (await bob.next("user"))["message"] == "hello"
            assert (await alice.action("echo", x=1))["x"] == 1
        # initializers stopped here

A :class:`TestConnection` goes through the same verbs, middleware and chat code as a real
WebSocket; only framing and sockets are left out. ``await api.http("GET", "/api/users/7")``
goes through the real HTTP server on a loopback port (opened on first use).

For a quick unit test of one action without booting: :func:`make_test_api` (the project's
code loaded, nothing run) and :func:`run_action`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import tempfile
import types
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from hero_fast.actions import ActionResult
from hero_fast.app import Api
from hero_fast.connections import Connection

__all__ = [
    "HttpResult",
    "TestApi",
    "TestConnection",
    "make_test_api",
    "make_test_connection",
    "run_action",
    "run_action_result",
]

TIMEOUT = 5.0



def _empty_project() -> tuple[Path, Any]:
    """A fresh empty project folder (only the built-in actions; the browser client written
    there, not into the current folder) and what removes it."""
    path = Path(tempfile.mkdtemp(prefix="hero-fast-test-"))
    return path, functools.partial(shutil.rmtree, path, ignore_errors=True)


def _payload(frame: bytes) -> tuple[int, bytes]:
    """The opcode and payload of one unmasked, unfragmented server frame."""
    opcode = frame[0] & 0x0F
    n = frame[1] & 0x7F
    offset = 2
    if n == 126:
        offset = 4
    elif n == 127:
        offset = 10
    return opcode, frame[offset:]


class _TestRequest:
    """The upgrade request of an in-process connection: just its fingerprint cookie."""

    def __init__(self, cookie_key: str, fingerprint: str) -> None:
        self.cookies = {cookie_key: fingerprint}
        self.query: dict[str, str] = {}
        self.target = self.path = "/primus"

    def header(self, name: str, default: Any = None) -> Any:
        return default


class _TestSocket:
    """What the WebSocket layer needs of an engine connection, in memory."""

    def __init__(self, on_close: Any, remote_ip: str, remote_port: int, request: Any = None) -> None:
        self.id = os.urandom(16).hex()
        self.user_data: Any = None
        self.request = request
        self.peer = (remote_ip, remote_port)
        self.client_address = remote_ip
        self.open = True
        self.close_code: int | None = None
        self.messages: list[Any] = []
        self.arrived = asyncio.Event()
        self._on_close = on_close

    def send_frame(self, frame: bytes) -> bool:
        if not self.open:
            return False
        opcode, payload = _payload(frame)
        self.messages.append(orjson.loads(payload) if opcode == 1 else payload)
        self.arrived.set()
        return True

    def send(self, data: Any, text: bool | None = None) -> bool:
        if not self.open:
            return False
        self.messages.append(orjson.loads(data) if isinstance(data, str) or text else data)
        self.arrived.set()
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.open:
            self.open = False
            self.close_code = code
            self._on_close(self, code, reason)


class TestConnection:
    """A client connected in-process: send verbs as a WebSocket client would and read what
    the server sent (``messages``: every JSON message in order, welcome included).

    Like the real clients it keeps what a reconnect needs: its recovery ``token``, the last
    ``offsets`` per room (rooms with history) and the last ``push_seq``;
    :meth:`drop` loses the connection as a network would, :meth:`recover` comes back."""

    __test__ = False

    def __init__(
        self, api: Api, remote_ip: str = "127.0.0.1", remote_port: int = 0, fingerprint: str | None = None
    ) -> None:
        self._api = api
        self.fingerprint = fingerprint or os.urandom(20).hex()
        request = _TestRequest(api.config["servers"]["web"]["fingerprint"]["cookieKey"], self.fingerprint)
        self._socket = _TestSocket(api.websocket.on_close, remote_ip, remote_port, request)
        self._next_id = 0
        self._read = 0  # how far next() has read
        self._tracked = 0  # how far the recovery bookkeeping has read
        self.token: str | None = None
        self.offsets: dict[str, dict[str, Any]] = {}
        self.push_seq = 0
        self._rooms_asked: dict[str, Any] = {}  # messageId of a roomAdd → its room
        api.websocket.on_connect(self._socket)  # type: ignore[arg-type]
        self._track()

    def _track(self) -> None:
        """Note the recovery token, room offsets and push numbers of what arrived."""
        messages = self._socket.messages
        while self._tracked < len(messages):
            m = messages[self._tracked]
            self._tracked += 1
            if not isinstance(m, dict):
                continue
            recovery = m.get("recovery")
            if isinstance(recovery, dict):
                self.token = recovery.get("token")
            if m.get("context") == "user" and type(m.get("offset")) is int:
                self.offsets[m["room"]] = {"offset": m["offset"], "epoch": m.get("epoch")}
            elif m.get("context") == "response" and isinstance(m.get("history"), dict):
                room = self._rooms_asked.get(str(m.get("messageId")))
                position = m["history"]
                known = self.offsets.get(room) if isinstance(room, str) else None
                # a chat message may have come first: the position only ever moves forward
                if isinstance(room, str) and (
                    known is None or known.get("epoch") != position.get("epoch") or known["offset"] < position["offset"]
                ):
                    self.offsets[room] = dict(position)
            elif m.get("context") == "response" and isinstance(m.get("data"), dict) and "recovered" in m["data"]:
                self.token = m["data"].get("token")
            if type(m.get("pushSeq")) is int:
                self.push_seq = max(self.push_seq, m["pushSeq"])

    @property
    def connection(self) -> Connection:
        """The server-side connection (``session``, ``rooms``, ``id``, ...)."""
        conn: Connection = self._socket.user_data
        return conn

    @property
    def id(self) -> str:
        return self.connection.id

    @property
    def messages(self) -> list[Any]:
        return self._socket.messages

    @property
    def open(self) -> bool:
        return self._socket.open

    @property
    def close_code(self) -> int | None:
        return self._socket.close_code

    def received(self, context: str | None = None) -> list[Any]:
        """Every message received so far, or those with this ``context`` (``response``,
        ``user`` for chat, ``alert``, ``api``, ...)."""
        if context is None:
            return list(self.messages)
        return [m for m in self.messages if isinstance(m, dict) and m.get("context") == context]

    async def _until(self, find: Any, timeout: float, what: str) -> Any:
        """``find()`` once it returns something other than None, checked whenever a message
        arrives, for at most ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = find()
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{what} within {timeout} s")
            self._socket.arrived.clear()
            try:
                await asyncio.wait_for(self._socket.arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def next(self, context: str | None = None, timeout: float = TIMEOUT) -> Any:
        """The next message not yet returned by ``next`` (with this ``context``), waiting up
        to ``timeout`` s for it."""

        def find() -> Any:
            while self._read < len(self.messages):
                m = self.messages[self._read]
                self._read += 1
                if context is None or (isinstance(m, dict) and m.get("context") == context):
                    return m
            return None

        return await self._until(find, timeout, f"no {context or 'new'} message")

    def send(self, message: Any) -> None:
        """Send any JSON value (or a str as is) as a text message, without waiting."""
        text = message if isinstance(message, str) else orjson.dumps(message).decode()
        self._api.websocket.on_message(self._socket, text)  # type: ignore[arg-type]

    async def request(self, event: str, /, *, timeout: float = TIMEOUT, **fields: Any) -> dict[str, Any]:
        """Send verb ``event`` with ``fields`` and return its response."""
        self._next_id += 1
        mid = f"test-{self._next_id}"
        if event == "roomAdd":
            self._rooms_asked[mid] = fields.get("room")
        self.send({"event": event, **fields, "messageId": mid})

        def find() -> Any:
            self._track()
            for m in self.messages:
                if isinstance(m, dict) and m.get("context") == "response" and m.get("messageId") == mid:
                    return m
            return None

        response: dict[str, Any] = await self._until(find, timeout, f"no response to {event!r}")
        return response

    async def action(self, name: str, params: Mapping[str, Any] | None = None, /, **kwargs: Any) -> dict[str, Any]:
        """Run action ``name`` with ``params`` and/or keyword params as this connection; the
        response (``error`` on failure)."""
        return await self.request("action", params={**(params or {}), **kwargs, "action": name})

    async def room_add(self, room: str) -> dict[str, Any]:
        return await self.request("roomAdd", room=room)

    async def room_leave(self, room: str) -> dict[str, Any]:
        return await self.request("roomLeave", room=room)

    async def room_view(self, room: str) -> dict[str, Any]:
        return await self.request("roomView", room=room)

    async def say(self, room: str, message: Any) -> dict[str, Any]:
        return await self.request("say", room=room, message=message)

    async def details(self) -> dict[str, Any]:
        return await self.request("detailsView")

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Disconnect (the server runs its destroy middleware and leaves the rooms)."""
        self._socket.close(code, reason)

    def drop(self) -> None:
        """Lose the connection as a network would (1006): the server keeps its state for
        recovery."""
        self._track()
        self._socket.close(1006, "")

    async def recover(self, old: TestConnection) -> dict[str, Any]:
        """On this new connection, take over ``old`` (dropped): sends the ``recover`` verb
        with ``old``'s token, offsets and last push; returns the response's ``data``."""
        old._track()
        self.offsets = dict(old.offsets)
        self.push_seq = old.push_seq
        response = await self.request("recover", token=old.token, offsets=old.offsets, pushSeq=old.push_seq)
        self._track()
        return response.get("data", response)  # type: ignore[no-any-return]


class HttpResult:
    """An HTTP response: ``status``, ``headers`` (lower-case names, in order), ``body``."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def json(self) -> Any:
        return orjson.loads(self.body)

    def __repr__(self) -> str:
        return f"<HttpResult {self.status} {self.body[:60]!r}>"


class TestApi:
    """A project booted in-process (``async with TestApi(project) as api``): its config (env
    ``test`` unless given), initializers (``initialize`` and ``start`` on enter, ``stop`` on
    exit), middleware, actions, routes and starting chat rooms. ``config`` overrides options
    (a nested dict or dotted keys). Without a project folder only the built-in actions exist.

    Everything of the real :class:`~hero_fast.app.Api` is at ``api.api``; the usual parts
    are also here: ``config``, ``state``, ``actions``, ``connections``, ``chat_room``."""

    __test__ = False

    def __init__(
        self,
        project_dir: str | Path | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        env: str = "test",
    ) -> None:
        overrides: dict[str, Any] = {"logging.accessLog": False, **(config or {})}
        self._cleanup: Any = None
        if project_dir is None:
            project_dir, self._cleanup = _empty_project()
        self.api = Api(project_dir, env=env, overrides=overrides)
        self._http: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    # the parts tests use most
    @property
    def config(self) -> dict[str, Any]:
        return self.api.config

    @property
    def state(self) -> types.SimpleNamespace:
        return self.api.state

    @property
    def actions(self) -> Any:
        return self.api.actions

    @property
    def connections(self) -> Any:
        return self.api.connections

    @property
    def chat_room(self) -> Any:
        return self.api.chat_room

    async def start(self) -> TestApi:
        await self.api.start(listen=False)
        return self

    async def stop(self) -> None:
        await self.api.stop()
        if self._http is not None:
            self._http[1].close()
            self._http = None
        if self._cleanup is not None:
            self._cleanup()

    async def __aenter__(self) -> TestApi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def connect(
        self, remote_ip: str = "127.0.0.1", remote_port: int = 0, fingerprint: str | None = None
    ) -> TestConnection:
        """A new in-process WebSocket client (its welcome message is already received);
        ``fingerprint`` is its cookie (a fresh one by default, as a new browser has)."""
        return TestConnection(self.api, remote_ip, remote_port, fingerprint)

    async def run_action(
        self, name: str, params: Mapping[str, Any] | None = None, *, connection: Any = None
    ) -> dict[str, Any]:
        """Run an action once, as a fresh ``testing`` connection (or ``connection``, a
        :class:`TestConnection` or a server-side Connection); the response dict."""
        if isinstance(connection, TestConnection):
            connection = connection.connection
        return await run_action(self.api, name, params, connection)

    async def http(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        timeout: float = TIMEOUT,
    ) -> HttpResult:
        """One HTTP request through the real web server (a loopback port, opened on first
        use; one keep-alive connection)."""
        if self.api.server is None:
            await self.api.listen("127.0.0.1", 0)
        if self._http is None:
            self._http = await asyncio.open_connection("127.0.0.1", self.api.port)
        reader, writer = self._http
        head = {"host": "127.0.0.1", **{k.lower(): v for k, v in (headers or {}).items()}}
        if json is not None:
            body = orjson.dumps(json)
            head.setdefault("content-type", "application/json")
        if body:
            head["content-length"] = str(len(body))
        lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return await asyncio.wait_for(self._read_response(reader, method), timeout)

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader, method: str) -> HttpResult:
        status_line = (await reader.readuntil(b"\r\n")).decode("latin-1")
        status = int(status_line.split(" ", 2)[1])
        headers: list[tuple[str, str]] = []
        while True:
            line = (await reader.readuntil(b"\r\n")).decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        length = next((int(v) for k, v in headers if k == "content-length"), None)
        if method == "HEAD" or status in (204, 304):
            data = b""
        elif length is not None:
            data = await reader.readexactly(length)
        else:
            data = await reader.read()
        return HttpResult(status, headers, data)


# -- without booting -----------------------------------------------------------------------


def make_test_api(project_dir: Path | str | None = None, config_overrides: Mapping[str, Any] | None = None) -> Api:
    """An :class:`~hero_fast.app.Api` with the project's code loaded (actions, middleware,
    routes; without ``project_dir``, the built-in actions only) and nothing run: no
    initializers, no rooms. Enough for :func:`run_action`; use :class:`TestApi` for the rest."""
    cleanup = None
    if project_dir is None:
        project_dir, cleanup = _empty_project()
    api = Api(project_dir, overrides=dict(config_overrides or {}))
    if cleanup is not None:
        weakref.finalize(api, cleanup)
    api.load()
    return api


def make_test_connection(api: Api, id: str | None = None) -> Connection:
    """A ``"testing"`` connection registered with ``api`` (so pushes to its id reach it);
    what it is sent is kept in ``connection.ws.messages``."""
    socket = _TestSocket(lambda *args: None, "testServer", 0)
    return api.connections.create("testing", "testServer", 0, ws=socket, id=id)  # type: ignore[arg-type]


async def run_action_result(
    api: Api, name: str, params: Mapping[str, Any] | None = None, connection: Any = None
) -> ActionResult:
    """Like :func:`run_action` but returns the whole :class:`ActionResult`
    (status, duration, params after input processing)."""
    conn = connection if connection is not None else make_test_connection(api)
    request = dict(params) if params else {}
    request["action"] = name
    try:
        result = api.actions.process(conn, request)
        if not isinstance(result, ActionResult):
            result = await result
    finally:
        if connection is None:
            api.connections.destroy(conn)
    assert isinstance(result, ActionResult)
    return result


async def run_action(
    api: Api, name: str, params: Mapping[str, Any] | None = None, connection: Any = None
) -> dict[str, Any]:
    """Run action ``name`` with ``params`` as a client would (inputs, middleware, limits)
    and return the response dict (``error`` on failure). A fresh ``"testing"`` connection
    is made when none is given."""
    result = await run_action_result(api, name, params, connection)
    return result.response
