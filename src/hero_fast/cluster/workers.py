"""``hero-fast serve --workers N``: N server processes on one port, sharing rooms through Redis.

The parent process only supervises: it starts N children (``hero-fast serve --reuse-port``
with the same project and settings), each of which binds the port with ``SO_REUSEPORT``
so the kernel spreads new connections over them, and each of which is a full cluster
node (rooms, say and ``connection.send`` cross between them through Redis).

What the supervisor does:

- A worker is *ready* once it listens: it says so through a pipe whose write end it gets
  in ``HERO_FAST_READY_FD`` (:func:`notify_ready`, called right after ``Api.start()``).
- The pool has *started* once each of its N slots had a ready worker. Until then a
  worker that exits with an error before it is ready (bad config or code, port taken,
  Redis unreachable) fails the start, as ``hero-fast serve`` alone would: the others are
  stopped and the parent exits with that worker's status.
- After that, a worker that dies, by a signal or with any status, however soon after its
  (re)start, is restarted after a delay that doubles with each consecutive death in its
  slot (``RESTART_MIN`` up to ``RESTART_MAX``; back to the minimum once a worker of the slot
  has served for ``STABLE_AFTER``). Its siblings are never touched. A crash while Redis is
  down is no different: the restarted worker cannot boot until Redis is back, and is
  retried at the capped delay meanwhile.
- The one death that is not retried is a boot failure: status 2 (the CLI's status for a
  configuration or project-code error) before the worker was ready, which restarting the
  same code and config cannot fix. The other workers keep serving; the parent exits 2
  once no worker is left.
- SIGINT/SIGTERM: every worker gets SIGTERM and stops gracefully; a further signal is
  forwarded to them again. A worker still there after its shutdown budget
  (``general.shutdownTimeout`` + ``servers.websocket.closeTimeout`` + 5 s) is killed.
  Workers run in their own process groups, so that a terminal's Ctrl-C reaches the
  supervisor only (and each worker gets one signal, not two).

Every start, death (pid, exit status or signal, time since start) and restart (its delay)
is logged under ``hero_fast.workers``.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["READY_FD_ENV", "Supervisor", "describe_exit", "notify_ready", "serve_workers"]

log = logging.getLogger("hero_fast.workers")

#: The environment variable that carries the ready pipe's write end to a worker.
READY_FD_ENV = "HERO_FAST_READY_FD"
#: The CLI's exit status for a configuration or project-code error.
BOOT_FAILURE = 2
#: Seconds before restarting a dead worker; doubles per consecutive death of its slot.
RESTART_MIN = 0.5
RESTART_MAX = 30.0
#: A worker ready this long resets its slot's restart delay.
STABLE_AFTER = 30.0
#: A worker not ready after this long is reported (once); it is left to finish booting.
SLOW_BOOT = 60.0
_TICK = 0.1


def notify_ready() -> None:
    """In a worker: tell the supervisor that this process listens. A no-op outside
    ``--workers`` (no ready pipe in the environment); the pipe is used once."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return
    try:
        os.write(int(fd), b"ready\n")
        os.close(int(fd))
    except (ValueError, OSError):
        pass  # the supervisor is gone: nothing to tell


def describe_exit(returncode: int) -> str:
    """``exited with status 1`` or ``killed by signal 9 (SIGKILL)``, from a Popen returncode."""
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"killed by signal {-returncode}"
    return f"killed by signal {-returncode} ({name})"


def _worker_preexec() -> None:  # pragma: no cover - runs in the child between fork and exec
    """A worker leads its own process group, so a terminal's Ctrl-C reaches only the
    supervisor, which then stops each worker with one SIGTERM (a second signal may force a
    worker out). Linux: the worker also gets SIGTERM if the supervisor dies, even by SIGKILL."""
    os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except Exception:
            pass


@dataclass
class _Slot:
    """One of the N places in the pool and the worker currently in it."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    ready_fd: int | None = None  # read end of the worker's ready pipe, until it reported
    started: float = 0.0
    ready_at: float | None = None
    deaths: int = 0  # consecutive deaths (reset once a worker was stable)
    restart_at: float | None = None
    slow_reported: bool = False

    @property
    def name(self) -> str:
        pid = self.proc.pid if self.proc is not None else "-"
        return f"worker {self.index} (pid {pid})"


class Supervisor:
    """Runs ``command`` ``workers`` times and keeps the pool up (see the module doc).
    ``run()`` blocks in the main thread until the pool stops and returns the exit status."""

    def __init__(self, command: list[str], env: Mapping[str, str], workers: int, stop_grace: float, *,
                 preexec: Callable[[], None] | None = None) -> None:
        self.command = command
        self.env = dict(env)
        self.env.pop(READY_FD_ENV, None)
        self.stop_grace = stop_grace
        self.preexec = preexec
        self.slots = [_Slot(i) for i in range(workers)]
        self.started = False  # every slot had a ready worker
        self.signals: list[int] = []
        self._selector = selectors.DefaultSelector()

    # -- signals -------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)

    # -- workers -------------------------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
        slot.restart_at = None
        read_end, write_end = os.pipe()
        try:
            slot.proc = subprocess.Popen(self.command, env={**self.env, READY_FD_ENV: str(write_end)},
                                         pass_fds=(write_end,), preexec_fn=self.preexec)
        except OSError as exc:
            os.close(read_end)
            slot.proc = None
            self._schedule_restart(slot, time.monotonic(), f"{slot.name} could not be started ({exc})", ran=None)
            return
        finally:
            os.close(write_end)
        os.set_blocking(read_end, False)
        slot.ready_fd = read_end
        slot.started = time.monotonic()
        slot.ready_at = None
        slot.slow_reported = False
        self._selector.register(read_end, selectors.EVENT_READ, slot)
        log.info("%s started", slot.name)

    def _read_ready(self, slot: _Slot) -> None:
        """Read what the worker wrote on its pipe: a line when ready, EOF if it never will be."""
        fd = slot.ready_fd
        if fd is None:
            return
        try:
            data = os.read(fd, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self._selector.unregister(fd)
        os.close(fd)
        slot.ready_fd = None
        if data:
            slot.ready_at = time.monotonic()
            log.info("%s ready after %.1f s", slot.name, slot.ready_at - slot.started)
            if not self.started and all(s.ready_at is not None for s in self.slots):
                self.started = True
                log.info("all %d workers ready", len(self.slots))

    def _died(self, slot: _Slot, returncode: int, now: float) -> int | None:
        """Handle a worker's death; returns an exit status when the pool must stop."""
        self._read_ready(slot)  # a ready line written just before dying still counts
        ready = slot.ready_at is not None
        what = describe_exit(returncode)
        name = slot.name
        slot.proc = None
        if not ready and returncode > 0 and (returncode == BOOT_FAILURE or not self.started):
            if not self.started:
                log.error("%s %s before it was ready: the pool failed at startup; stopping the others",
                          name, what)
                return returncode
            remaining = sum(s.proc is not None or s.restart_at is not None for s in self.slots)
            log.error("%s %s before it was ready: a configuration or code error (see its output); "
                      "not restarting it, %d workers remain", name, what, remaining)
            return BOOT_FAILURE if remaining == 0 else None
        stable = slot.ready_at is not None and now - slot.ready_at >= STABLE_AFTER
        self._schedule_restart(slot, now, f"{name} {what}", ran=now - slot.started, ready=ready, stable=stable)
        return None

    def _schedule_restart(self, slot: _Slot, now: float, what: str, *, ran: float | None, ready: bool = False,
                          stable: bool = False) -> None:
        slot.deaths = 1 if stable else slot.deaths + 1
        delay = min(RESTART_MIN * 2 ** (slot.deaths - 1), RESTART_MAX)
        slot.restart_at = now + delay
        when = "" if ran is None else f" {ran:.1f} s after its start ({'ready' if ready else 'not ready yet'})"
        log.warning("%s%s; restarting in %.3g s (death %d in a row)", what, when, delay, slot.deaths)

    def _check(self) -> int | None:
        """One pass over the slots: deaths, due restarts, slow boots."""
        now = time.monotonic()
        for slot in self.slots:
            if slot.proc is not None:
                returncode = slot.proc.poll()
                if returncode is not None:
                    status = self._died(slot, returncode, now)
                    if status is not None:
                        return status
                elif slot.ready_at is None and not slot.slow_reported and now - slot.started > SLOW_BOOT:
                    slot.slow_reported = True
                    log.warning("%s is not ready %.0f s after its start", slot.name, now - slot.started)
            elif slot.restart_at is not None and now >= slot.restart_at:
                self._spawn(slot)
        return None

    # -- run and stop --------------------------------------------------------------

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        status = 0
        try:
            for slot in self.slots:
                self._spawn(slot)
            while not self.signals:
                for key, _ in self._selector.select(_TICK):
                    self._read_ready(key.data)
                found = self._check()
                if found is not None:
                    status = found
                    break
            if self.signals:
                log.info("received %s: stopping the workers", signal.Signals(self.signals[0]).name)
        finally:
            self._stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._selector.close()
        return status

    def _stop(self) -> None:
        """SIGTERM every worker, forward further signals, wait (bounded), kill what is left."""
        for slot in self.slots:
            slot.restart_at = None
            if slot.ready_fd is not None:
                self._selector.unregister(slot.ready_fd)
                os.close(slot.ready_fd)
                slot.ready_fd = None
        live = [s for s in self.slots if s.proc is not None and s.proc.poll() is None]
        if live:
            log.info("stopping %d workers (SIGTERM; waiting up to %.3g s)", len(live), self.stop_grace)
        for slot in live:
            self._signal(slot, signal.SIGTERM)
        forwarded = len(self.signals)
        deadline = time.monotonic() + self.stop_grace
        while live:
            time.sleep(_TICK)
            if len(self.signals) > forwarded:
                forwarded = len(self.signals)
                log.info("received %s again: forwarding it to %d workers", signal.Signals(self.signals[-1]).name,
                         len(live))
                for slot in live:
                    self._signal(slot, self.signals[-1])
            for slot in list(live):
                assert slot.proc is not None
                if slot.proc.poll() is not None:
                    log.info("%s stopped (%s)", slot.name, describe_exit(slot.proc.returncode))
                    live.remove(slot)
            if live and time.monotonic() > deadline:
                for slot in live:
                    log.error("%s did not stop within %.3g s; killing it", slot.name, self.stop_grace)
                    assert slot.proc is not None
                    slot.proc.kill()
                    slot.proc.wait()
                break
        log.info("all workers stopped")

    @staticmethod
    def _signal(slot: _Slot, signum: int) -> None:
        assert slot.proc is not None
        try:
            slot.proc.send_signal(signum)
        except ProcessLookupError:  # pragma: no cover - died meanwhile
            pass


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve_workers(project: Path, workers: int, overrides: Mapping[str, Any], env: str | None = None) -> int:
    """Run ``workers`` server processes on one port until SIGINT/SIGTERM; the exit status."""
    from hero_fast.config import load_config
    from hero_fast.logs import configure_logging

    config, _ = load_config(project, env=env, overrides=dict(overrides))
    logging_cfg = config.get("logging") or {}
    configure_logging(logging_cfg.get("level", "info"), json=bool(logging_cfg.get("json")),
                      redact=logging_cfg.get("redact", ()))
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
    grace = config["general"]["shutdownTimeout"] + config["servers"]["websocket"]["closeTimeout"] + 5
    log.info("starting %d workers on %s:%s; stop with Ctrl-C or SIGTERM", workers, host, port)
    supervisor = Supervisor(command, child_env, workers, grace,
                            preexec=_worker_preexec)
    return supervisor.run()
