"""Servers under test as child processes: start on a free loopback port, wait until they
accept, stop by PID (never by name), read their RSS.

Shared by the runners (bench/run_all.py, bench/macro/run_echo.py) and the Python load
clients (idle_conns.py, recovery_load.py).
"""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence


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
