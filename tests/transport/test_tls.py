"""TLS: ``serve(ssl=...)`` gives https and wss on the same port, on both loops, with a
self-signed certificate the tests make with the ``openssl`` CLI (skipped without it)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
import websockets
from _nethelpers import HOST, read_response

from hero_fast._transport import Options, Response, serve

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


def make_cert(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture(scope="session")
def cert_pair(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("tls"))


def contexts(cert_pair):
    cert, key = cert_pair
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(cert), str(key))
    client_ctx = ssl.create_default_context(cafile=str(cert))
    return server_ctx, client_ctx


class Both:
    def on_message(self, conn, message):
        conn.send(message)

    def on_http(self, request):
        return Response(200, [("Content-Type", "text/plain")], b"secure " + request.path.encode())


def test_wss_echo_with_compression(run, cert_pair):
    async def main():
        server_ctx, client_ctx = contexts(cert_pair)
        server = await serve(Both(), HOST, 0, options=Options(tick=0.05), ssl=server_ctx)
        try:
            uri = f"wss://{HOST}:{server.port}/"
            async with websockets.connect(uri, ssl=client_ctx, compression="deflate", max_size=None) as ws:
                for msg in ["hello", "x" * 200_000, b"\x00" * 70_000]:
                    await ws.send(msg)
                    assert await ws.recv() == msg
            assert server.counters["deflate_connections"] == 1
        finally:
            await server.shutdown(timeout=1.0)

    run(main())


def test_https_request_and_keep_alive(run, cert_pair):
    async def main():
        server_ctx, client_ctx = contexts(cert_pair)
        server = await serve(Both(), HOST, 0, options=Options(tick=0.05), ssl=server_ctx)
        try:
            reader, writer = await asyncio.open_connection(HOST, server.port, ssl=client_ctx,
                                                           server_hostname="localhost")
            for path in ("/a", "/b"):
                writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
                status, _, _, body = await read_response(reader)
                assert (status, body) == (200, b"secure " + path.encode())
            writer.close()
        finally:
            await server.shutdown(timeout=1.0)

    run(main())


def test_plain_http_to_a_tls_port_does_not_hurt_the_server(run, cert_pair):
    async def main():
        server_ctx, client_ctx = contexts(cert_pair)
        server = await serve(Both(), HOST, 0, options=Options(tick=0.05), ssl=server_ctx)
        try:
            r, w = await asyncio.open_connection(HOST, server.port)
            w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                await asyncio.wait_for(r.read(), 3)
            except (ConnectionError, asyncio.TimeoutError):
                pass
            w.close()
            async with websockets.connect(f"wss://{HOST}:{server.port}/", ssl=client_ctx) as ws:
                await ws.send("after")
                assert await ws.recv() == "after"
        finally:
            await server.shutdown(timeout=1.0)

    run(main())
