"""The request front of the WebSocket server: messageIds assigned without uuid.uuid4()
in the uuid4 text format, and the client address behind a trusted proxy (remoteIP over
HTTP and WebSocket)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path

import pytest
import websockets

from .conftest import WsClient, start_api

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_uuid4_text_is_a_version_4_uuid():
    from hero_fast._ids import uuid4_text  # here: the other tests also run against older trees

    ids = {uuid4_text() for _ in range(2000)}
    assert len(ids) == 2000
    for text in list(ids)[:200]:
        assert UUID4.match(text) and uuid.UUID(text).version == 4 and str(uuid.UUID(text)) == text


async def test_requests_without_a_message_id_get_one_without_uuid4(tmp_path: Path, monkeypatch) -> None:
    def no_syscalls():  # the per-request uuid.uuid4() read os.urandom: a system call each time
        raise AssertionError("uuid.uuid4() called")

    api = await start_api(tmp_path)
    try:
        c = await WsClient.connect(api)
        monkeypatch.setattr(uuid, "uuid4", no_syscalls)
        seen = set()
        for x in range(3):
            await c.ws.send(json.dumps({"event": "action", "params": {"action": "echo", "x": x}}))
            r = await c.recv()
            assert r["x"] == x and UUID4.match(r["messageId"])
            seen.add(r["messageId"])
        assert len(seen) == 3
        await c.close()
    finally:
        await api.stop()


@pytest.mark.parametrize("trusted", [["127.0.0.1"], []], ids=["trusted", "not-trusted"])
async def test_remote_ip_behind_a_trusted_proxy(tmp_path: Path, trusted: list[str]) -> None:
    api = await start_api(tmp_path, {"servers": {"web": {"trustedProxies": trusted}}})
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    expected = "203.0.113.9" if trusted else "127.0.0.1"
    try:
        ws = await websockets.connect(f"ws://127.0.0.1:{api.port}/primus", additional_headers=headers)
        c = WsClient(ws)
        c.welcome = await c.recv()
        assert (await c.request("detailsView"))["data"]["remoteIP"] == expected
        await c.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
        writer.write(b"GET /api/echo?x=1 HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\n"
                     b"Connection: close\r\n\r\n")
        raw = await reader.read()
        writer.close()
        body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
        assert body["requesterInformation"]["remoteIP"] == expected
    finally:
        await api.stop()
