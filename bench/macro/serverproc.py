"""The processes of a bench run: servers under test started on a free loopback port and
stopped by PID (never by name), their RSS; and the frame of the Python load clients (many
sockets, one bounded run, one JSON line).

Shared by the runners (bench/run_all.py, bench/macro/run_echo.py) and the Python load
clients (idle_conns.py, socketio_load.py, recovery_load.py).
"""
from __future__ import annotations

import asyncio
import json
import os
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

UNSUPPORTED = 4  # exit status of a load client whose server lacks the feature it measures


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(proc: subprocess.Popen, port: int, timeout: float) -> bool:
    """True once 127.0.0.1:port accepts; False if proc exits or timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen) -> None:
    """Stop a process we started, by its PID only: SIGTERM, then SIGKILL after 5 s."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def raise_fd_limit() -> int:
    """Soft open-files limit up to the hard one (thousands of sockets; children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def client_main(name: str, coro: Coroutine[Any, Any, dict[str, Any]], timeout: float) -> int:
    """Run a load client's coroutine on uvloop within `timeout` and print its result as one JSON
    line. Exit status: 0 ok, 3 measured with errors, 4 (UNSUPPORTED) the server lacks the
    feature ("supported": false), 1 the client itself failed (message on stderr)."""
    import uvloop

    try:
        res = uvloop.run(asyncio.wait_for(coro, timeout))
    except Exception as e:  # bounded: report and fail
        print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(res), flush=True)
    if res.get("supported") is False:
        return UNSUPPORTED
    return 3 if res.get("errors") else 0


def rss_kib(pid: int) -> int:
    """Resident set size of pid (VmRSS from /proc/PID/status), KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Server:
    """A server we start on a free port and stop by PID.

    ``argv`` and the values of ``env`` may hold ``{port}``. ``path`` is the WebSocket path the
    load clients use; ``room`` says the server speaks the actionhero protocol (welcome message,
    roomAdd, say). ``pre`` runs before every start (e.g. flush a private Redis). ``broken``
    holds why the server could not start, so it is not tried again.
    """

    def __init__(self, name: str, argv: Sequence[str], *, cwd: str | None = None,
                 env: Mapping[str, str] | None = None, path: str = "/", room: bool = False,
                 settle: float = 0.5, pre: Callable[[], None] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(env or {})
        self.path = path
        self.room = room
        self.settle = settle
        self.pre = pre
        self.broken: str | None = None

    def command(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return (env + " " if env else "") + shlex.join(self.argv)

    def start(self, log_path: str, timeout: float = 30.0) -> tuple[subprocess.Popen, int] | None:
        """Start on a free port; (process, port), or None with ``broken`` set."""
        if self.pre:
            self.pre()
        port = free_port()
        argv = [a.replace("{port}", str(port)) for a in self.argv]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.update({k: v.replace("{port}", str(port)) for k, v in self.env.items()})
        with open(log_path, "ab") as logf:
            proc = subprocess.Popen(argv, cwd=self.cwd, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        if not wait_port(proc, port, timeout):
            stop(proc)
            with open(log_path, "rb") as f:
                tail = f.read()[-600:].decode(errors="replace").strip()
            self.broken = f"did not start: {shlex.join(argv)}: {tail or 'no output'}"
            return None
        time.sleep(self.settle)  # let it settle after the first accept
        return proc, port
