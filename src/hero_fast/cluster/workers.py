"""``hero-fast serve --workers N``: N server processes on one port, sharing rooms through Redis.

The parent process only supervises: it starts N children (``hero-fast serve --reuse-port``
with the same project and settings), each of which binds the port with ``SO_REUSEPORT``
so the kernel spreads new connections over them, and each of which is a full cluster
node (rooms, say and ``connection.send`` cross between them through Redis). The parent
forwards SIGINT/SIGTERM to the children and waits for their graceful stop; a worker that
dies later is restarted; a worker that fails within its first seconds (bad config, port
taken, Redis unreachable) stops them all and the parent exits with its status.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["serve_workers"]

#: A worker exiting with an error sooner than this after its start is a startup failure.
STARTUP_GRACE = 10.0


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the worker gets SIGTERM (a graceful stop) if the supervisor dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _say(text: str) -> None:
    print(f"hero-fast: {text}", file=sys.stderr, flush=True)


def serve_workers(project: Path, workers: int, overrides: Mapping[str, Any], env: str | None = None) -> int:
    """Run ``workers`` server processes on one port until SIGINT/SIGTERM; the exit status."""
    from hero_fast.config import load_config

    config, _ = load_config(project, env=env, overrides=dict(overrides))
    web = config["servers"]["web"]
    host, port = web["host"], web["port"]
    overrides = dict(overrides)
    if port == 0:  # every worker must bind the same port: choose it here
        port = overrides["servers.web.port"] = _free_port(host)

    # The children read the parent's settings from the environment (the generic
    # HERO_FAST__a__b=<json> form), so every serve option reaches them unchanged.
    child_env = dict(os.environ)
    for key, value in overrides.items():
        child_env["HERO_FAST__" + key.replace(".", "__")] = json.dumps(value)
    command = [sys.executable, "-m", "hero_fast.cli", "serve", "--project", str(project), "--reuse-port"]
    if env:
        command += ["--env", env]

    preexec = _die_with_parent if sys.platform.startswith("linux") else None

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, env=child_env, preexec_fn=preexec)

    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
    status = 0
    try:
        for i in range(workers):
            procs[i] = (spawn(), time.monotonic())
        pids = ", ".join(str(p.pid) for p, _ in procs.values())
        _say(f"{workers} workers on {host}:{port} (pids {pids}); stop with Ctrl-C or SIGTERM")
        while not stopping:
            time.sleep(0.2)
            for i, (proc, started) in list(procs.items()):
                rc = proc.poll()
                if rc is None or stopping:
                    continue
                if rc != 0 and time.monotonic() - started < STARTUP_GRACE:
                    _say(f"worker {i} (pid {proc.pid}) failed at startup (exit {rc}); stopping the others")
                    status = rc if rc > 0 else 1
                    stopping = True
                    break
                _say(f"worker {i} (pid {proc.pid}) exited with {rc}; starting a new one")
                procs[i] = (spawn(), time.monotonic())
    finally:
        alive = [p for p, _ in procs.values() if p.poll() is None]
        for proc in alive:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:  # pragma: no cover
                pass
        grace = config["general"]["shutdownTimeout"] + config["servers"]["websocket"]["closeTimeout"] + 5
        deadline = time.monotonic() + grace
        for proc in alive:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _say(f"worker pid {proc.pid} did not stop within {grace:.0f} s; killing it")
                proc.kill()
                proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
