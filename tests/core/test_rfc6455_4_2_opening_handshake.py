"""RFC 6455 4.2 — Server-Side Requirements of the opening handshake.

4.2.1 reading the client's handshake (every refusal: 400, or 426 with
Sec-WebSocket-Version: 13), 4.2.2 the server's answer (Sec-WebSocket-Accept,
subprotocol), 1.3's worked example.
"""

from __future__ import annotations

import base64

import pytest

from hero_fast._core import (
    HandshakeError,
    accept_key,
    build_accept_response,
    build_http_response,
    check_upgrade_request,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def good_headers(**replace):
    h = {
        "host": "server.example.com",
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-key": KEY,
        "sec-websocket-version": "13",
        "origin": "http://example.com",
    }
    for k, v in replace.items():
        k = k.replace("_", "-")
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    return list(h.items())


def refused(method="GET", version="1.1", headers=None):
    with pytest.raises(HandshakeError) as ei:
        check_upgrade_request(method, version, good_headers() if headers is None else headers)
    return ei.value


def test_rfc_example_accept_key():
    # RFC 6455 1.3 / 4.2.2 (the RFC's value, and what SHA-1 + base64 give)
    import hashlib

    guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    assert base64.b64encode(hashlib.sha1(KEY.encode() + guid).digest()).decode() == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert accept_key(KEY.encode()) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_valid_request():
    key, protocols, extensions = check_upgrade_request("GET", "1.1", good_headers())
    assert (key, protocols, extensions) == (KEY, [], [])


@pytest.mark.parametrize(
    "replace",
    [
        {"upgrade": "WebSocket"},
        {"upgrade": "websocket, foo/1"},
        {"connection": "keep-alive, Upgrade"},
        {"connection": "upgrade"},
        {"connection": "UPGRADE,keep-alive"},
        {"sec_websocket_key": "  " + KEY + " "},
        {"sec_websocket_version": " 13 "},
    ],
)
def test_valid_variants(replace):
    key, _, _ = check_upgrade_request("GET", "1.1", good_headers(**replace))
    assert key == KEY


def test_tokens_spread_over_repeated_headers():
    headers = [*good_headers(connection="keep-alive"), ("connection", "Upgrade")]
    assert check_upgrade_request("GET", "1.1", headers)[0] == KEY


def test_subprotocols_and_extensions_are_returned():
    headers = [
        *good_headers(
            sec_websocket_protocol="chat, Superchat",
            sec_websocket_extensions="permessage-deflate; client_max_window_bits",
        ),
        ("sec-websocket-protocol", "v2.json"),
    ]
    _, protocols, extensions = check_upgrade_request("GET", "1.1", headers)
    assert protocols == ["chat", "Superchat", "v2.json"]  # case kept: subprotocols are case-sensitive
    assert extensions == ["permessage-deflate; client_max_window_bits"]


@pytest.mark.parametrize("method", ["POST", "HEAD", "PUT", "get", "OPTIONS"])
def test_method_must_be_get(method):
    e = refused(method=method)
    assert e.status == 400 and "GET" in e.reason


@pytest.mark.parametrize("version", ["1.0", "0.9", "2.0"])
def test_version_must_be_http11(version):
    e = refused(version=version)
    assert e.status == 400 and "HTTP/1.1" in e.reason


@pytest.mark.parametrize(
    "key",
    [
        "",
        "not base64!!",
        "dGhlIHNhbXBsZSBub25jZQ",  # missing padding
        "dGhlIHNhbXBsZSBub25jZQ=",
        "dGhlIHNhbXBsZSBub25jZQ==x",
        "dGhlIHNhbXBsZSBub25j",  # 20 characters: 15 bytes
        base64.b64encode(b"x" * 15).decode(),  # decodes to 15 bytes
        base64.b64encode(b"x" * 17).decode(),  # decodes to 17 bytes
        base64.b64encode(b"x" * 32).decode(),
        "dGhlIHNhbXBsZSBub25jZR==",  # non-zero unused bits: not canonical base64 of 16 bytes
        "dGhlIHNhbXBsZSBub25j*Q==",
        "dGhlIHNhbXBsZSBub25jZQé=",
    ],
)
def test_invalid_key(key):
    e = refused(headers=good_headers(sec_websocket_key=key))
    assert e.status == 400 and "Sec-WebSocket-Key" in e.reason


def test_missing_key():
    e = refused(headers=good_headers(sec_websocket_key=None))
    assert e.status == 400 and "Sec-WebSocket-Key" in e.reason


def test_duplicate_key():
    e = refused(headers=[*good_headers(), ("sec-websocket-key", base64.b64encode(b"y" * 16).decode())])
    assert e.status == 400 and "Sec-WebSocket-Key" in e.reason
    # even the same value twice
    e = refused(headers=[*good_headers(), ("sec-websocket-key", KEY)])
    assert e.status == 400


@pytest.mark.parametrize("version", [None, "8", "12", "14", "13, 8", "", "thirteen"])
def test_wrong_or_missing_version_is_426(version):
    e = refused(headers=good_headers(sec_websocket_version=version))
    assert e.status == 426
    assert ("Sec-WebSocket-Version", "13") in e.headers


def test_duplicate_version_is_426():
    e = refused(headers=[*good_headers(), ("sec-websocket-version", "13")])
    assert e.status == 426 and ("Sec-WebSocket-Version", "13") in e.headers


@pytest.mark.parametrize("connection", [None, "keep-alive", "upgraded", "close", ""])
def test_connection_without_upgrade_token(connection):
    e = refused(headers=good_headers(connection=connection))
    assert e.status == 400 and "Connection" in e.reason


@pytest.mark.parametrize("upgrade", [None, "h2c", "websockets", "", "web socket"])
def test_upgrade_without_websocket(upgrade):
    e = refused(headers=good_headers(upgrade=upgrade))
    assert e.status in (400, 426)
    assert "websocket" in e.reason.lower() or "upgrade" in e.reason.lower()
    if e.status == 426:
        assert ("Upgrade", "websocket") in e.headers


def test_handshake_error_carries_status_reason_headers():
    e = HandshakeError(426, "nope", [("A", "b")])
    assert (e.status, e.reason, e.headers, str(e)) == (426, "nope", [("A", "b")], "nope")


def test_accept_response_exact_bytes():
    assert build_accept_response(KEY) == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"\r\n"
    )


def test_accept_response_with_subprotocol_and_headers():
    got = build_accept_response(KEY, "chat", [("X-Extra", "1")])
    assert got == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"Sec-WebSocket-Protocol: chat\r\n"
        b"X-Extra: 1\r\n"
        b"\r\n"
    )


def test_build_http_response():
    assert build_http_response(404, [("Content-Length", "2")], b"no") == (
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"
    )
    assert build_http_response(299, reason="Custom") == b"HTTP/1.1 299 Custom\r\n\r\n"
    assert build_http_response(426).startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
