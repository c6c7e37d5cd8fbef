"""The limit rows must be real WebSocket servers to a strict client (RFC 6455 section 4.2.2:
the Sec-WebSocket-Accept value; section 5.1: unmasked server frames), or their numbers would
not be a limit for a WebSocket server."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from serverproc import Server, stop
from websockets.sync.client import connect

PY = sys.executable


def running(srv: Server, tmp_path: str) -> Iterator[int]:
    started = srv.start(os.path.join(tmp_path, "server.log"), timeout=20)
    assert started, srv.broken
    proc, port = started
    try:
        yield port
    finally:
        stop(proc)


@pytest.fixture
def c_echo(built: str, tmp_path: str) -> Iterator[int]:
    yield from running(Server("C epoll", [os.path.join(built, "epoll_server"), "echo", "-P", "{port}"],
                              settle=0.1), str(tmp_path))


@pytest.fixture
def c_broadcast(built: str, tmp_path: str) -> Iterator[int]:
    yield from running(Server("C epoll", [os.path.join(built, "epoll_server"), "broadcast", "-P", "{port}"],
                              settle=0.1), str(tmp_path))


@pytest.fixture
def raw_framed(built: str, tmp_path: str) -> Iterator[int]:
    yield from running(Server("raw", [PY, os.path.join(built, "peers", "raw_uvloop_echo.py"), "--port", "{port}"],
                              settle=0.1), str(tmp_path))


@pytest.mark.parametrize("server", ["c_echo", "raw_framed"])
def test_section_4_2_2_accept_key_and_echo(server: str, request: pytest.FixtureRequest) -> None:
    port = request.getfixturevalue(server)
    # websockets checks Sec-WebSocket-Accept and rejects masked server frames
    with connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=None) as ws:
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send(b"\x00\xff" * 35000)  # 64-bit length, several reads
        assert ws.recv() == b"\x00\xff" * 35000
        assert ws.ping(b"p").wait(5)


def test_section_5_5_1_close_is_answered(c_echo: int) -> None:
    with connect(f"ws://127.0.0.1:{c_echo}/", compression=None) as ws:
        ws.close(1000, "bye")
    assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000


def test_broadcast_reaches_every_connection_sender_included(c_broadcast: int) -> None:
    url = f"ws://127.0.0.1:{c_broadcast}/"
    with connect(url, compression=None) as a, connect(url, compression=None) as b, \
            connect(url, compression=None) as c:
        a.send("one")
        b.send("two")
        for ws in (a, b, c):
            assert sorted([ws.recv(timeout=5), ws.recv(timeout=5)]) == ["one", "two"]
