"""HTTPS and WSS on the same port of a live Api, configured with
``servers.web.certfile``/``keyfile`` (what ``--certfile/--keyfile`` set), with a
self-signed certificate made by the ``openssl`` CLI (skipped without it)."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
import websockets

from .conftest import read_response, start

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


async def test_https_and_wss_on_one_port(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    project = tmp_path / "p"
    project.mkdir()
    api = await start(project, {"servers": {"web": {"certfile": str(cert), "keyfile": str(key)}}})
    try:
        client_ctx = ssl.create_default_context(cafile=str(cert))
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port, ssl=client_ctx,
                                                       server_hostname="localhost")
        writer.write(b"GET /api/status HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, _, body = await read_response(reader)
        assert status == 200 and json.loads(body)["serverInformation"]["serverName"] == "hero-fast"
        writer.close()
        async with websockets.connect(f"wss://127.0.0.1:{api.port}/primus", ssl=client_ctx,
                                      server_hostname="localhost") as ws:
            assert json.loads(await ws.recv())["context"] == "api"
            await ws.send(json.dumps({"event": "roomAdd", "room": "defaultRoom", "messageId": 1}))
            await ws.send(json.dumps({"event": "say", "room": "defaultRoom", "messageId": 2, "message": "x" * 500}))
            got = [json.loads(await ws.recv()) for _ in range(3)]
            assert any(m.get("context") == "user" and m["message"] == "x" * 500 for m in got)
            assert ws.protocol.extensions  # permessage-deflate over TLS
        # plain text to the TLS port costs the server nothing
        r, w = await asyncio.open_connection("127.0.0.1", api.port)
        w.write(b"GET / HTTP/1.1\r\n\r\n")
        try:
            await asyncio.wait_for(r.read(), 3)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        w.close()
    finally:
        await asyncio.wait_for(api.stop(), 10)
