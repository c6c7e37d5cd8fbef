"""Runs a plan: each job (a server and its scenarios) once per repeat, the job order rotated per
repeat, every server started fresh on a free port and stopped by PID; then idle memory and
issue 12's recovery bench. Every client command has a timeout, and no new work starts past the
time budget (what was left out is listed in RESULTS.md)."""
from __future__ import annotations

import collections
import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from serverproc import Server, stop

from . import issue12
from .privateredis import PrivateRedis
from .scenarios import MACRO, PY, client_argv
from .servers import HF, HF_HISTORY, REPO, Plan

T0 = time.monotonic()
Key = tuple[str, str]  # (scenario, row)


def log(*a: Any) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s]", *a, file=sys.stderr, flush=True)


def fmt_rate(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k"


def display(text: str, workdir: str) -> str:
    """Paths as RESULTS.md shows them: the interpreter as python, the rest repo-relative, the
    run's work directory (bench project, logs) as $WORK."""
    return text.replace(PY, "python").replace(REPO + "/", "").replace(workdir, "$WORK")


def server_shown(srv: Server, workdir: str, redis: PrivateRedis | None) -> str:
    """A server's command for RESULTS.md: display() paths, $PORT, $REDIS_PORT."""
    line = display(srv.command(), workdir).replace("'{port}'", "$PORT").replace("{port}", "$PORT")
    return line.replace(str(redis.port), "$REDIS_PORT") if redis else line


def shown(argv: list[str], port: int, pid: int, workdir: str) -> str:
    """A command line for RESULTS.md: display() paths, $PORT and $SERVER_PID."""
    words = ["$PORT" if w == str(port) else "$SERVER_PID" if w == str(pid) else w for w in argv]
    return display(shlex.join(words).replace("'$PORT'", "$PORT").replace("'$SERVER_PID'", "$SERVER_PID"), workdir)


def run_client(argv: list[str], timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    """Run a load client; its last JSON line (with "exit"), or None and why."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    line = next((ln for ln in reversed(r.stdout.splitlines()) if ln.startswith("{")), None)
    err = r.stderr.strip()
    if err:
        log("    stderr: " + err[-400:].replace("\n", "\n    stderr: "))
    if line is None:
        return None, f"exit {r.returncode}: {err[-200:]}"
    res: dict[str, Any] = json.loads(line)
    res["exit"] = r.returncode
    return res, None


@dataclass
class Outcome:
    results: dict[Key, list[dict[str, Any]]] = field(default_factory=lambda: collections.defaultdict(list))
    commands: dict[Key, str] = field(default_factory=dict)
    servers: dict[str, set[str]] = field(default_factory=lambda: collections.defaultdict(set))
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_yet: dict[str, str] = field(default_factory=dict)  # issue-12 bench -> why it did not run


class Runner:
    def __init__(self, a: Any, plan: Plan, workdir: str, redis: PrivateRedis | None) -> None:
        self.a = a
        self.plan = plan
        self.workdir = workdir
        self.redis = redis
        self.deadline = T0 + a.budget
        self.out = Outcome()
        self.history_checked = False

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    @contextlib.contextmanager
    def serving(self, srv: Server, need: float, what: str) -> Iterator[tuple[subprocess.Popen, int] | None]:
        """`srv` started fresh for one piece of work and stopped by PID after it; None (and the
        work skipped) when the server is broken or less than `need` seconds of budget are left."""
        if srv.broken:
            yield None
            return
        if self.time_left() < need:
            self.out.skipped.append(f"{what} (time budget)")
            yield None
            return
        log(what)
        started = srv.start(os.path.join(self.workdir, f"server-{srv.name.replace(' ', '_')}.log"))
        if not started:
            log(f"  {srv.name} broken: {srv.broken}")
            self.out.notes.append(f"{srv.name}: {srv.broken}")
            yield None
            return
        self.out.servers[srv.name].add(server_shown(srv, self.workdir, self.redis))
        try:
            yield started
        finally:
            stop(started[0])

    def history_supported(self, srv: Server, port: int) -> bool:
        """The history row runs only once the server puts offsets on chat messages."""
        if self.history_checked:
            return True
        res, err = run_client(issue12.probe_argv(port, srv.path), 30)
        if res is None or not res.get("history"):
            why = err or (res or {}).get("reason") or "probe failed"
            srv.broken = why
            self.out.not_yet["history"] = why
            log(f"  {srv.name}: not measured ({why})")
            return False
        self.history_checked = True
        return True

    def measure(self, srv: Server, proc: subprocess.Popen, port: int, sc: str, rep: int) -> None:
        a = self.a
        argv = client_argv(sc, srv, port, proc.pid, a.duration, a.warmup, 200 if a.quick else 1000)
        counted = self.redis is not None and srv.name in self.plan.counted_redis
        calls0 = self.redis.calls() if counted and self.redis else None
        res, err = run_client(argv, a.duration + a.warmup + (90 if sc.startswith("sio-") else 60))
        self.out.commands[(sc, srv.name)] = shown(argv, port, proc.pid, self.workdir)
        if res is None:
            log(f"  {sc}: failed ({err})")
            self.out.notes.append(f"{srv.name} {sc} repeat {rep + 1}: failed ({err})")
            return
        if calls0 is not None and self.redis:  # the whole client run: connection setup included
            calls1 = self.redis.calls()
            res["redis_calls"] = {k: n - calls0.get(k, 0) for k, n in calls1.items()
                                  if n != calls0.get(k, 0) and k != "info"}
        self.out.results[(sc, srv.name)].append(res)
        log(f"  {sc}: {fmt_rate(res.get('msg_per_s'))}/s errors={res.get('errors')} "
            f"server_cpu={res.get('server_cpu_pct')}% (sys {res.get('server_sys_pct')}%) "
            f"client_cpu={res.get('cpu_pct')}% machine={res.get('sys_busy_pct')}%")
        if res.get("errors"):
            self.out.notes.append(f"{srv.name} {sc} repeat {rep + 1}: {res.get('errors')} error(s)"
                                  f"{' (burst timed out)' if res.get('timed_out') else ''}")

    def jobs(self) -> None:
        jobs = self.plan.jobs
        for rep in range(self.a.repeat):
            k = rep % len(jobs) if jobs else 0
            for srv, scenarios in jobs[k:] + jobs[:k]:
                with self.serving(srv, 10, f"[{rep + 1}/{self.a.repeat}] {srv.name}: {', '.join(scenarios)}") as up:
                    if up is None:
                        continue
                    proc, port = up
                    if srv.name == HF_HISTORY and not self.history_supported(srv, port):
                        continue
                    for sc in scenarios:
                        self.measure(srv, proc, port, sc, rep)
                        if proc.poll() is not None:
                            self.out.notes.append(f"{srv.name} exited (code {proc.returncode}) during {sc}")
                            break

    def idle(self) -> None:
        for srv in self.plan.idle:
            with self.serving(srv, 25, f"idle memory: {srv.name}, {self.a.idle_conns} connections") as up:
                if up is None:
                    continue
                proc, port = up
                time.sleep(1.0)
                argv = [PY, os.path.join(MACRO, "idle_conns.py"), "-P", str(port), "-S", str(proc.pid),
                        "-n", str(self.a.idle_conns), "-u", srv.path]
                res, err = run_client(argv, 150)
                self.out.commands[("idle", srv.name)] = shown(argv, port, proc.pid, self.workdir)
                if res:
                    self.out.results[("idle", srv.name)].append(res)
                    log(f"  {res.get('kib_per_conn')} KiB/conn (failed {res.get('failed')})")
                else:
                    self.out.notes.append(f"idle {srv.name}: failed ({err})")

    def recovery(self) -> None:
        """Issue 12: 1,000 clients aborted server-side at once reconnect with recovery."""
        srv = self.plan.history
        if srv is None:
            return
        if "history" in self.out.not_yet:
            self.out.not_yet["recovery"] = self.out.not_yet["history"]
            return
        srv.broken = None
        with self.serving(srv, 60, f"recovery: {srv.name}, {issue12.RECOVERY_CLIENTS} clients") as up:
            if up is None:
                return
            proc, port = up
            argv = issue12.recovery_argv(port, proc.pid, srv.path, issue12.RECOVERY_CLIENTS)
            res, err = run_client(argv, 180)
            self.out.commands[("recovery", HF)] = shown(argv, port, proc.pid, self.workdir)
            if res is None:
                self.out.notes.append(f"recovery: failed ({err})")
            elif res.get("supported") is False:
                self.out.not_yet["recovery"] = str(res.get("reason"))
                log(f"  not measured ({res.get('reason')})")
            else:
                self.out.results[("recovery", HF)].append(res)
                log(f"  recovered {res.get('recovered')}/{res.get('clients')}, p99 {res.get('p99_s')} s")
