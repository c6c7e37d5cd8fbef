"""hero-fast serve / actions against a real Api.

The server runs in a subprocess on a free loopback port; every wait is bounded and the
process is killed by its PID if it outlives the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hero_fast.cli import main, scaffold

START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("HERO_FAST"):
            monkeypatch.delenv(name)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "demo"
    scaffold(target)
    return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, port: int) -> None:
        self.proc = proc
        self.log = log
        self.port = port

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    scheme = "http"

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(f"{self.scheme}://127.0.0.1:{self.port}{path}")
        context = None
        if self.scheme == "https":  # a self-signed test certificate
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def wait_ready(self, path: str = "/api/status") -> tuple[int, dict[str, str], bytes]:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"hero-fast serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                return self.get(path, timeout=1.0)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"hero-fast serve did not answer {path} within {START_TIMEOUT}s:\n{self.output()}"
                    )
                time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"hero-fast serve did not stop within {STOP_TIMEOUT}s of {sig!r}:\n{self.output()}")


@contextmanager
def serving(
    tmp_path: Path,
    args: list[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[Server]:
    port = port or free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HERO_FAST")}
    environ.update(env or {})
    log = tmp_path / f"serve-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hero_fast.cli", "serve", *args],
            cwd=cwd or tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environ,
        )
    try:
        yield Server(proc, log, port)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_answers_status_then_stops_on_signal(tmp_path, project, sig):
    port = free_port()
    with serving(tmp_path, ["--project", str(project), "--port", str(port)], port=port) as server:
        status, _, body = server.wait_ready("/api/status")
        assert status == 200, body
        assert isinstance(json.loads(body), dict)
        assert server.stop(sig) == 0, server.output()


@pytest.mark.slow
def test_serve_in_the_current_folder_runs_the_scaffolded_project(tmp_path, project):
    websockets_sync = pytest.importorskip("websockets.sync.client")
    port = free_port()
    # the port comes from the environment; the project is the current folder
    with serving(tmp_path, [], cwd=project, env={"HERO_FAST_PORT": str(port)}, port=port) as server:
        status, _, _ = server.wait_ready("/api/status")
        assert status == 200

        status, _, body = server.get("/")
        assert status == 200 and b"/primus" in body and b"roomAdd" in body  # the chat page

        status, _, body = server.get("/api/echo?message=hi")
        assert status == 200 and json.loads(body)["message"] == "hi"
        status, _, body = server.get("/api/echo")
        assert status == 422
        assert json.loads(body)["error"] == "message is a required parameter for this action"
        status, _, body = server.get("/api/randomNumber")
        assert status == 200 and 0 <= json.loads(body)["randomNumber"] < 1

        # what the chat page does, over a real WebSocket
        with websockets_sync.connect(f"ws://127.0.0.1:{port}/primus", open_timeout=5) as ws:
            welcome = json.loads(ws.recv(timeout=5))
            assert (welcome["welcome"], welcome["context"]) == ("Hello! Welcome to demo", "api")  # config/api.py
            ws.send(json.dumps({"event": "roomAdd", "room": "defaultRoom", "messageId": 1}))
            assert _next(ws, lambda m: m.get("messageId") == 1)["status"] == "OK"
            ws.send(json.dumps({"event": "say", "room": "defaultRoom", "message": "hello", "messageId": 2}))
            chat = _next(ws, lambda m: m.get("context") == "user")
            assert chat["message"] == "hello" and chat["room"] == "defaultRoom"
            ws.send(json.dumps({"event": "action", "params": {"action": "randomNumber"}, "messageId": 3}))
            reply = _next(ws, lambda m: m.get("messageId") == 3)
            assert "error" not in reply and 0 <= reply["randomNumber"] < 1

        assert server.stop() == 0, server.output()


def _next(ws: Any, match: Any, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if isinstance(message, dict) and match(message):
            return message


@pytest.mark.slow
def test_serve_https_with_certfile_and_keyfile(tmp_path, project):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs openssl to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    port = free_port()
    args = ["--project", str(project), "--port", str(port), "--certfile", str(cert), "--keyfile", str(key)]
    with serving(tmp_path, args, port=port) as server:
        server.scheme = "https"
        status, _, body = server.wait_ready("/api/randomNumber")
        assert status == 200 and "randomNumber" in json.loads(body)
        assert server.stop() == 0, server.output()


@pytest.mark.slow
def test_serve_on_a_taken_port_fails_with_status_1(tmp_path, project):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with serving(tmp_path, ["--project", str(project), "--port", str(port)], port=port) as server:
            try:
                code = server.proc.wait(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail("hero-fast serve kept running on a taken port:\n" + server.output())
            assert code == 1, server.output()
            assert "cannot serve on 127.0.0.1:" in server.output()


def test_actions_lists_the_project_actions(project, capsys):
    assert main(["actions", "--project", str(project)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "randomNumber" in lines and "echo" in lines and "status" in lines
    assert "I am an API method which will generate a random number" in lines["randomNumber"]
    assert "message*" in lines["echo"]  # the required input


def test_actions_json(project, capsys, monkeypatch):
    monkeypatch.chdir(project)  # the current folder by default
    assert main(["actions", "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    (entry,) = docs["randomNumber"].values()
    assert entry["description"] == "I am an API method which will generate a random number"
    assert "message" in next(iter(docs["echo"].values()))["inputs"]
