"""The engine against an independent client: the ``websockets`` package."""

from __future__ import annotations

import asyncio

import pytest
from _nethelpers import StrEchoHandler, serving
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hero_fast._transport import Reject
from hero_fast.echo import EchoHandler

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


def client(port, path="/", **kw):
    kw.setdefault("proxy", None)
    kw.setdefault("compression", None)
    kw.setdefault("open_timeout", 5)
    kw.setdefault("close_timeout", 5)
    kw.setdefault("ping_interval", None)
    return connect(f"ws://127.0.0.1:{port}{path}", **kw)


class Recorder(StrEchoHandler):
    def __init__(self):
        self.events = []
        self.closed = asyncio.Event()

    def on_connect(self, conn):
        self.events.append(("connect", conn.id))

    def on_close(self, conn, code, reason):
        self.events.append(("close", code, reason))
        self.closed.set()


def test_echo_text_and_binary_across_size_boundaries(run):
    async def main():
        async with serving(EchoHandler()) as server, client(server.port) as ws:
            for n in SIZES:
                text = ("aé€😀" * n)[:n]
                await ws.send(text)
                assert await ws.recv() == text
                data = bytes(i & 0xFF for i in range(n))
                await ws.send(data)
                assert await ws.recv() == data

    run(main())


def test_fragmented_message_from_client(run):
    async def main():
        async with serving(EchoHandler()) as server, client(server.port) as ws:
            await ws.send(["frag", "ment", "ed"])
            assert await ws.recv() == "fragmented"
            await ws.send([b"\x00", b"\x01" * 70000])
            assert await ws.recv() == b"\x00" + b"\x01" * 70000

    run(main())


def test_many_pipelined_messages_keep_order(run):
    async def main():
        async with serving(EchoHandler()) as server, client(server.port, max_queue=None) as ws:
            msgs = [f"m{i}" if i % 3 else bytes([i & 0xFF]) * (i % 200) for i in range(2000)]
            for m in msgs:
                await ws.send(m)
            got = [await ws.recv() for _ in msgs]
            assert got == msgs

    run(main())


def test_server_closes_with_code_seen_by_client(run):
    class Closer(Recorder):
        def on_message(self, conn, message):
            conn.send("last words")
            conn.close(4001, "bye now")

    async def main():
        handler = Closer()
        # close_timeout far above the test bound: only a proper close ends this in time
        async with serving(handler, close_timeout=10) as server:
            async with client(server.port, close_timeout=10) as ws:
                await ws.send("close me")
                assert await ws.recv() == "last words"
                with pytest.raises(ConnectionClosed) as ei:
                    await ws.recv()
                assert ei.value.rcvd.code == 4001 and ei.value.rcvd.reason == "bye now"
                # the server closes TCP right after the handshake completes
                await asyncio.wait_for(ws.wait_closed(), 3)
            assert handler.events[-1] == ("close", 4001, "bye now")
            await asyncio.wait_for(_no_connections(server), 3)

    run(main())


async def _no_connections(server):
    while server.connections:
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("code,reason", [(1000, ""), (1001, "leaving"), (3000, "app"), (4999, "x" * 100)])
def test_client_close_codes_reach_handler(run, code, reason):
    async def main():
        handler = Recorder()
        async with serving(handler) as server:
            ws = await client(server.port)
            await ws.send("hi")
            assert await ws.recv() == "hi"
            await asyncio.wait_for(ws.close(code, reason), 3)
            # the server echoed our code
            assert ws.close_code == code
            assert ws.protocol.close_rcvd.code == code
            await asyncio.wait_for(handler.closed.wait(), 3)
            assert handler.events[-1] == ("close", code, reason)
            await asyncio.wait_for(_no_connections(server), 3)

    run(main())


def test_shutdown_closes_clients_with_1001(run):
    async def main():
        async with serving(EchoHandler()) as server:
            ws = await client(server.port)
            await server.shutdown(timeout=2)
            with pytest.raises(ConnectionClosed) as ei:
                await ws.recv()
            assert ei.value.rcvd.code == 1001

    run(main())


def test_subprotocol_selection_hook(run):
    class Picky(StrEchoHandler):
        def on_upgrade(self, conn, request, subprotocols):
            self.offered = subprotocols
            return "chat" if "chat" in subprotocols else None

    async def main():
        handler = Picky()
        async with serving(handler) as server:
            async with client(server.port, subprotocols=["superchat", "chat"]) as ws:
                assert ws.subprotocol == "chat"
                assert handler.offered == ["superchat", "chat"]
                await ws.send("x")
                assert await ws.recv() == "x"
            async with client(server.port) as ws:
                assert ws.subprotocol is None
                assert handler.offered == []

    run(main())


def test_subprotocol_not_offered_is_refused(run):
    class Wrong(StrEchoHandler):
        def on_upgrade(self, conn, request, subprotocols):
            return "not-offered"

    async def main():
        async with serving(Wrong()) as server:
            with pytest.raises(InvalidStatus) as ei:
                async with client(server.port, subprotocols=["chat"]):
                    pass
            assert ei.value.response.status_code == 500

    run(main())


@pytest.mark.parametrize("how", ["raise", "return"])
def test_on_upgrade_reject(run, how):
    class Gate(StrEchoHandler):
        def on_upgrade(self, conn, request, subprotocols):
            r = Reject(403, "no entry here")
            if how == "raise":
                raise r
            return r

    async def main():
        async with serving(Gate()) as server:
            with pytest.raises(InvalidStatus) as ei:
                async with client(server.port):
                    pass
            assert ei.value.response.status_code == 403
            assert b"no entry here" in ei.value.response.body

    run(main())


def test_async_on_upgrade_accepts_and_rejects(run):
    class AsyncGate(Recorder):
        async def on_upgrade(self, conn, request, subprotocols):
            await asyncio.sleep(0.01)
            if request.query.get("token") != "ok":
                raise Reject(401, "bad token")
            return subprotocols[0] if subprotocols else None

    async def main():
        handler = AsyncGate()
        async with serving(handler) as server:
            async with client(server.port, "/?token=ok", subprotocols=["v1"]) as ws:
                assert ws.subprotocol == "v1"
                await ws.send("async ok")
                assert await ws.recv() == "async ok"
            with pytest.raises(InvalidStatus) as ei:
                async with client(server.port, "/?token=no"):
                    pass
            assert ei.value.response.status_code == 401
            assert b"bad token" in ei.value.response.body

    run(main())


def test_on_upgrade_exception_is_500(run):
    class Broken(StrEchoHandler):
        def on_upgrade(self, conn, request, subprotocols):
            raise RuntimeError("boom")

    async def main():
        async with serving(Broken()) as server:
            with pytest.raises(InvalidStatus) as ei:
                async with client(server.port):
                    pass
            assert ei.value.response.status_code == 500

    run(main())


def test_request_details_available_in_on_upgrade(run):
    seen = {}

    class Inspect(StrEchoHandler):
        def on_upgrade(self, conn, request, subprotocols):
            seen.update(
                path=request.path,
                target=request.target,
                query=request.query,
                query_string=request.query_string,
                header=request.header("X-Test"),
                header_values=request.header_values("x-multi"),
                cookies=request.cookies,
                peer=request.peer,
                remote_address=request.remote_address,
                remote_port=request.remote_port,
                method=request.method,
                conn_peer=conn.peer,
                conn_request=conn.request,
            )

        def on_connect(self, conn):
            seen["request_after"] = conn.request
            seen["id"] = conn.id

    async def main():
        async with serving(Inspect()) as server:
            headers = [("X-Test", "value"), ("Cookie", "a=1; b=two"), ("Cookie", "c=\"3\""),
                       ("X-Multi", "1"), ("X-Multi", "2")]
            async with client(server.port, "/rooms/a%20b?x=1&y=&x=3", additional_headers=headers) as ws:
                await ws.send("hi")
                await ws.recv()
                local = ws.local_address
            assert seen["path"] == "/rooms/a b"
            assert seen["target"] == "/rooms/a%20b?x=1&y=&x=3"
            assert seen["query_string"] == "x=1&y=&x=3"
            assert seen["query"] == {"x": "3", "y": ""}
            assert seen["header"] == "value"
            assert seen["header_values"] == ["1", "2"]
            assert seen["cookies"] == {"a": "1", "b": "two", "c": "3"}
            assert seen["peer"][:2] == local[:2]
            assert (seen["remote_address"], seen["remote_port"]) == local[:2]
            assert seen["method"] == "GET"
            assert seen["conn_peer"][:2] == local[:2]
            assert seen["request_after"] is not None and seen["request_after"].path == "/rooms/a b"
            assert isinstance(seen["id"], str) and len(seen["id"]) == 32

    run(main())


def test_connection_ids_are_unique(run):
    ids = []

    class Ids(StrEchoHandler):
        def on_connect(self, conn):
            ids.append(conn.id)

    async def main():
        async with serving(Ids()) as server:
            for _ in range(5):
                async with client(server.port) as ws:
                    await ws.send("x")
                    await ws.recv()
        assert len(set(ids)) == 5

    run(main())


def test_server_ping_answered_by_client(run):
    pongs = []

    class Pinger(StrEchoHandler):
        def on_message(self, conn, message):
            conn.ping(b"are you there")
            conn.send(message)

    async def main():
        async with serving(Pinger(), ping_interval=0) as server, client(server.port) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            # websockets answers pings automatically; a second round trip proves
            # the connection survived it
            await ws.send("y")
            assert await ws.recv() == "y"
            pongs.append(True)

    run(main())
    assert pongs


def test_client_ping_gets_pong(run):
    async def main():
        async with serving(EchoHandler()) as server, client(server.port) as ws:
            waiter = await ws.ping(b"data")
            latency = await asyncio.wait_for(waiter, 3)
            assert latency >= 0

    run(main())


def test_message_too_big_closes_1009(run):
    async def main():
        async with serving(EchoHandler(), max_message_size=1000) as server, client(server.port) as ws:
            await ws.send(b"x" * 1000)
            assert await ws.recv() == b"x" * 1000
            await ws.send(b"x" * 1001)
            with pytest.raises(ConnectionClosed) as ei:
                await ws.recv()
            assert ei.value.rcvd.code == 1009

    run(main())


def test_handler_exception_closes_1011(run):
    class Boom(StrEchoHandler):
        def on_message(self, conn, message):
            raise ValueError("handler bug")

    async def main():
        async with serving(Boom()) as server, client(server.port) as ws:
            await ws.send("x")
            with pytest.raises(ConnectionClosed) as ei:
                await ws.recv()
            assert ei.value.rcvd.code == 1011

    run(main())


def test_on_connect_exception_closes_1011(run):
    class Broken(Recorder):
        def on_connect(self, conn):
            super().on_connect(conn)
            raise RuntimeError("bug in on_connect")

    async def main():
        handler = Broken()
        async with serving(handler) as server, client(server.port) as ws:
            with pytest.raises(ConnectionClosed) as ei:
                await ws.recv()
            assert ei.value.rcvd is not None and ei.value.rcvd.code == 1011
            assert handler.events[-1] == ("close", 1011, "internal error")

    run(main())
