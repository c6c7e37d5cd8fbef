"""Fuzzing the JSON envelope decoder (servers/websocket.py ``on_data``/``on_message``) with a
fake engine connection: random JSON values, random verbs and fields, and random
bytes. Every input is answered with a response envelope (success, or an
``Error: ...`` one), a push, or a documented close; no verb ever fails with an
unexpected exception (which is logged as ``verb ... failed``)."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import tempfile
from pathlib import Path

import orjson
from _fuzzsupport import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from hero_fast._core import encode_frame
from hero_fast.app import Api

VERBS = ["action", "roomAdd", "roomLeave", "roomView", "say", "detailsView", "file", "documentation",
         "nope", "quit", "", None, 5]


class FakeWs:
    """What the WebSocket server needs of an engine connection."""

    def __init__(self, n: int) -> None:
        self.id = f"fake{n}"
        self.user_data = None
        self.request = None
        self.peer = ("127.0.0.1", 40000 + n)
        self.client_address = "127.0.0.1"
        self.frames: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.open = True

    def send_frame(self, frame: bytes) -> bool:
        if not self.open:
            return False
        self.frames.append(frame)
        return True

    def send(self, data, text=None) -> bool:  # type: ignore[no-untyped-def]
        # the app sends JSON bytes as a text message (text=True): frame it as the engine would
        return self.send_frame(encode_frame(1, data if isinstance(data, bytes) else orjson.dumps(data)))

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)
        self.open = False


def payload(frame: bytes) -> bytes:
    n = frame[1] & 0x7F
    off = 2
    if n == 126:
        n, off = struct.unpack("!H", frame[2:4])[0], 4
    elif n == 127:
        n, off = struct.unpack("!Q", frame[2:10])[0], 10
    return frame[off : off + n]


class Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


FAILURES = Failures()
logging.getLogger("hero_fast").addHandler(FAILURES)
LOOP = asyncio.new_event_loop()
_DIR = tempfile.mkdtemp(prefix="hero-fast-fuzz-")
(Path(_DIR) / "public").mkdir()
(Path(_DIR) / "public" / "index.html").write_text("<p>hi</p>")
API = Api(_DIR, overrides={"servers": {"websocket": {"server": {"pingInterval": 0}}}})
API.load()
API.loop = LOOP
COUNT = [0]

json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
room = st.one_of(st.sampled_from(["defaultRoom", "anotherRoom", "nope", "", "a\x00b", "x" * 300]), json_value)


@st.composite
def envelope(draw) -> bytes | str:  # type: ignore[no-untyped-def]
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=60))
    if kind == 1:
        return draw(st.text(max_size=60))
    if kind == 2:
        return json.dumps(draw(json_value))
    if kind == 3:
        return draw(st.sampled_from(['"primus::ping::1"', '"primus::pong::2"', '"primus::id::"', '"primus::x"',
                                     "null", "[]", "1e400", "[" * 100 + "]" * 100, '{"event":"say"']))
    msg = {"event": draw(st.sampled_from(VERBS))}
    for key in draw(st.lists(st.sampled_from(["room", "message", "messageId", "params", "file"]), max_size=5)):
        if key == "room":
            msg[key] = draw(room)
        elif key == "params":
            msg[key] = draw(st.one_of(json_value, st.fixed_dictionaries(
                {"action": st.sampled_from(["status", "nope", 5, None])}, optional={"apiVersion": json_value})))
        elif key == "file":
            msg[key] = draw(st.one_of(st.sampled_from(["index.html", "../secret", "/etc/passwd", ""]), json_value))
        else:
            msg[key] = draw(json_value)
    return json.dumps(msg)


async def deliver(messages: list[bytes | str]) -> FakeWs:
    COUNT[0] += 1
    ws = FakeWs(COUNT[0])
    API.websocket.on_connect(ws)  # type: ignore[arg-type]
    ws.frames.clear()
    for m in messages:
        if not ws.open:
            break
        if isinstance(m, str):
            API.websocket.on_message(ws, m)  # type: ignore[arg-type]
        else:  # as the engine hands them over: text only when it is UTF-8
            try:
                m.decode()
            except UnicodeDecodeError:
                API.websocket.on_data(ws, m, False)  # type: ignore[arg-type]
            else:
                API.websocket.on_data(ws, m, True)  # type: ignore[arg-type]
    for _ in range(5):
        await asyncio.sleep(0)
    if API._tasks:
        await asyncio.wait(set(API._tasks), timeout=5)
    API.websocket.on_close(ws, 1000, "")  # type: ignore[arg-type]
    return ws


@fuzz_settings(300)
@given(st.lists(envelope(), min_size=1, max_size=4))
def test_every_envelope_is_answered_or_documented(messages: list[bytes | str]) -> None:
    FAILURES.records.clear()
    ws = LOOP.run_until_complete(deliver(messages))
    assert not FAILURES.records, [r.getMessage() for r in FAILURES.records]
    for f in ws.frames:
        assert f[0] in (0x81, 0xC1), f[:2]  # whole text frames
        value = json.loads(payload(f))
        if isinstance(value, str):
            assert value.startswith("primus::")
            continue
        assert isinstance(value, dict)
        if value.get("context") == "response":
            err = value.get("error")
            assert err is None or isinstance(err, str)
            if isinstance(value.get("status"), str) and value["status"].startswith("Error"):
                assert value["error"] == value["status"]
        else:
            assert value.get("context") in ("user", "alert", "api"), value
    if ws.closed is not None:
        assert ws.closed == (1000, "quit")
    assert not API.connections.by_id  # destroyed
    assert all(not r.members for r in API.chat_room.rooms.values())
