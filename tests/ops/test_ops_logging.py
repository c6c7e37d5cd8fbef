"""Logging: the JSON formatter, the access log lines and redaction of secrets."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _ops_support import Ws, eventually, http, make_project, running

from hero_fast.logs import (
    REDACTED,
    JsonFormatter,
    Redactor,
    TextFormatter,
    configure_logging,
)

SECRET_COOKIE = "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeed"


# -- redaction ------------------------------------------------------------------------------------


def test_redactor_hides_secret_names_case_insensitively_and_by_substring() -> None:
    r = Redactor()
    for name in ["password", "Password", "access_token", "X-Auth-Token", "client_secret", "X-Api-Key", "apiKey"]:
        assert r.is_secret(name), name
    for name in ["user", "room", "action", "message", "passage"]:
        assert not r.is_secret(name), name
    assert not r.is_secret(3)


def test_redactor_params_nested() -> None:
    r = Redactor()
    params = {"user": "ann", "password": "pw", "nested": {"api_key": "k", "list": [{"token": "t", "x": 1}]}}
    assert r.params(params) == {
        "user": "ann",
        "password": REDACTED,
        "nested": {"api_key": REDACTED, "list": [{"token": REDACTED, "x": 1}]},
    }
    assert params["password"] == "pw"  # a copy


def test_redactor_query_target_headers_and_cookies() -> None:
    r = Redactor([*Redactor().names, "sessionID"])
    assert r.target("/primus?token=abc&room=lobby&sessionID=42") == (
        f"/primus?token={REDACTED}&room=lobby&sessionID={REDACTED}"
    )
    assert r.target("/primus") == "/primus"
    assert r.query("a=1&access_token=s3cr3t") == f"a=1&access_token={REDACTED}"
    headers = r.headers(
        [
            ("Authorization", "Bearer abc"),
            ("Cookie", "sessionID=abc; theme=dark"),
            ("Set-Cookie", "sessionID=abc; Path=/"),
            ("X-Api-Key", "k"),
            ("User-Agent", "test"),
        ]
    )
    assert headers == [
        ("Authorization", REDACTED),
        ("Cookie", f"sessionID={REDACTED}; theme={REDACTED}"),
        ("Set-Cookie", REDACTED),
        ("X-Api-Key", REDACTED),
        ("User-Agent", "test"),
    ]


# -- formatters -----------------------------------------------------------------------------------


def _record(msg: str, *args: Any, exc: bool = False, **extra: Any) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad\nthing")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("hero_fast.test", logging.WARNING, __file__, 1, msg, args, exc_info)
    record.__dict__.update(extra)
    return record


def test_json_formatter_one_object_per_line_with_extras() -> None:
    line = JsonFormatter().format(_record("hello %s\nworld", "you", exc=True, action="echo", token="t0k"))
    assert "\n" not in line
    obj = json.loads(line)
    assert obj["level"] == "warning" and obj["logger"] == "hero_fast.test"
    assert obj["message"] == "hello you\nworld"
    assert obj["action"] == "echo"
    assert obj["token"] == REDACTED
    assert "ValueError: bad" in obj["exc"]
    assert obj["ts"].endswith("Z") and obj["ts"][10] == "T"


def test_json_formatter_survives_unserializable_values() -> None:
    obj = json.loads(JsonFormatter().format(_record("x", big=2**80, thing=object(), path=Path("/p"))))
    assert obj["big"] == 2**80 and obj["path"] == "/p" and "object" in obj["thing"]


def test_text_formatter_appends_json_encoded_extras() -> None:
    line = TextFormatter().format(_record("action %s", "echo", status=200, note="a\nb", password="pw"))
    assert "\n" not in line
    assert "hero_fast.test: action echo" in line
    assert 'status=200 note="a\\nb" password="[REDACTED]"' in line


def test_configure_logging_replaces_only_its_own_handler(restore_logging: None) -> None:
    root = logging.getLogger()
    other = logging.NullHandler()
    root.addHandler(other)
    try:
        first = configure_logging("debug", stream=io.StringIO())
        second = configure_logging("warning", json=True, stream=io.StringIO())
        assert first not in root.handlers and second in root.handlers and other in root.handlers
        assert root.level == logging.WARNING
        assert isinstance(second.formatter, JsonFormatter)
        with pytest.raises(ValueError):
            configure_logging("loud")
    finally:
        root.removeHandler(other)


def test_json_mode_routes_python_warnings_through_logging(restore_logging: None) -> None:
    import warnings

    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("careful\nnow", UserWarning, stacklevel=1)
    (line,) = stream.getvalue().splitlines()
    obj = json.loads(line)
    assert obj["logger"] == "py.warnings" and obj["level"] == "warning" and "careful" in obj["message"]


# -- the access log -------------------------------------------------------------------------------


def access_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    out = []
    for line in stream.getvalue().splitlines():
        obj = json.loads(line)  # every line is one JSON object
        if obj["logger"] == "hero_fast.access":
            out.append(obj)
    return out


async def test_access_log_json_lines_with_redaction(tmp_path: Path, restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    async with running(tmp_path) as api:
        async with Ws.connect(
            api,
            "/primus?token=s3cr3t-query&room=lobby",
            additional_headers={"Cookie": f"sessionID={SECRET_COOKIE}", "Authorization": "Bearer s3cr3t-hdr"},
        ) as ws:
            await ws.action("login", user="ann", password="s3cr3t-pw")
            await ws.action("slow", ms=5)
            await ws.action("boom")
            await ws.action("nope", password="s3cr3t-unknown", api_key="s3cr3t-key")
        status, _, _ = await http(api, "/api/login?user=bob&password=s3cr3t-http")
        assert status == 200
        await eventually(lambda: any(e["event"] == "connection.close" for e in access_lines(stream)))

    text = stream.getvalue()
    for secret in ["s3cr3t", SECRET_COOKIE]:
        assert secret not in text, secret
    lines = access_lines(stream)
    events = [e["event"] for e in lines]
    assert events.count("connection.open") == 1 and events.count("connection.close") == 1
    opened = next(e for e in lines if e["event"] == "connection.open")
    assert opened["path"] == f"/primus?token={REDACTED}&room=lobby"
    assert opened["conn_type"] == "webSocket" and opened["remote_ip"] == "127.0.0.1"
    assert len(opened["fingerprint"]) == 12  # a hash, never the cookie
    closed = next(e for e in lines if e["event"] == "connection.close")
    assert closed["conn_id"] == opened["conn_id"]
    assert closed["close_code"] == 1000 and closed["actions"] == 4 and closed["duration_ms"] >= 0

    actions = {(e["action"], e["conn_type"]): e for e in lines if e["event"] == "action"}
    login = actions[("login", "webSocket")]
    assert login["status"] == 200 and login["outcome"] == "ok" and login["duration_ms"] >= 0
    assert login["params"]["password"] == REDACTED and login["params"]["user"] == "ann"
    assert actions[("slow", "webSocket")]["duration_ms"] >= 4  # observed after its Task
    boom = actions[("boom", "webSocket")]
    assert boom["status"] == 500 and boom["outcome"] == "server_error"
    assert re.fullmatch(r"internal error \(ref [0-9a-f]{8}\)", boom["error"])
    unknown = actions[("_unknown", "webSocket")]
    assert unknown["status"] == 404 and unknown["requested"] == "nope"
    assert unknown["params"]["password"] == REDACTED and unknown["params"]["api_key"] == REDACTED
    web = actions[("login", "web")]
    assert web["params"]["password"] == REDACTED and web["outcome"] == "ok"


async def test_access_log_can_be_turned_off(tmp_path: Path, restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    async with running(tmp_path, {"logging.accessLog": False}) as api:
        async with Ws.connect(api) as ws:
            await ws.action("login", user="ann", password="pw")
    assert access_lines(stream) == []
    assert "hero-fast listening" in stream.getvalue()


# -- through the CLI -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_log_json_flag(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERO_FAST")}
    log = tmp_path / "serve.log"
    argv = ["serve", "--project", str(project), "--port", str(port), "--log-json", "--log-level", "info"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hero_fast.cli", *argv],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=env,
        )
    try:
        deadline = time.monotonic() + 20
        url = f"http://127.0.0.1:{port}/api/login?user=cli&password=s3cr3t-cli"
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    assert resp.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    text = log.read_text()
    assert "s3cr3t" not in text
    objs = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert any(o["logger"] == "hero_fast" and "listening" in o["message"] for o in objs)
    action = next(o for o in objs if o.get("event") == "action")
    assert action["action"] == "login" and action["params"]["password"] == REDACTED
