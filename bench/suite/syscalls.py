"""System calls per message, the figure behind "hero-fast leads at 16 in flight and is level at 1":
`perf stat` counts the server's read- and write-family syscalls (tracepoints, every flavour:
picows calls send(2) itself, libuv write(2)/writev(2)) while the load client runs a scenario.
Tracepoints cost a little per call, so this is a separate pass after the throughput runs and
its throughput is not reported."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

from serverproc import stop

from .runner import log
from .scenarios import client_argv
from .servers import C_EPOLL, HF, PICOWS, Plan

READS = ("read", "readv", "recvfrom", "recvmsg")
WRITES = ("write", "writev", "sendto", "sendmsg")
ROWS = [(sc, row) for sc in ("echo64x16", "echo64x1", "fanout") for row in (HF, PICOWS, C_EPOLL)]


def perf_works() -> bool:
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-x,", "-e", "syscalls:sys_enter_write", "true"], capture_output=True,
                       timeout=30)
    return r.returncode == 0


def measure(plan: Plan, quick: bool, workdir: str, notes: list[str]) -> dict[tuple[str, str], dict[str, float]]:
    """{(scenario, row): {"reads": per message, "writes": per message}} for ROWS that ran.

    perf counts the server while the load client runs (the client is perf's command), with no
    warmup, so the messages the client counted are (all but a few in flight at the end) those
    the counted syscalls carried; the handshakes add a few hundred calls to millions."""
    if not perf_works():
        notes.append("perf (with syscall tracepoints) is not usable here: no syscalls-per-message figures")
        return {}
    events = ",".join(f"syscalls:sys_enter_{n}" for n in READS + WRITES)
    window = 1.0 if quick else 2.0
    out = {}
    for key in ROWS:
        srv = plan.by_row.get(key)
        if srv is None or srv.broken:
            continue
        started = srv.start(os.path.join(workdir, "server-syscalls.log"))
        if not started:
            continue
        proc, port = started
        load = client_argv(key[0], srv, port, proc.pid, window, 0.0)
        try:
            r = subprocess.run(["perf", "stat", "-x,", "-e", events, "-p", str(proc.pid), "--", *load],
                               capture_output=True, text=True, timeout=window + 60)
        except subprocess.TimeoutExpired:
            r = None
        finally:
            stop(proc)
        counts, res = {}, None
        if r is not None:
            for line in r.stderr.splitlines():
                f = line.split(",")
                if len(f) > 2 and f[2].startswith("syscalls:sys_enter_") and f[0].isdigit():
                    counts[f[2].removeprefix("syscalls:sys_enter_")] = int(f[0])
            line = next((ln for ln in reversed(r.stdout.splitlines()) if ln.startswith("{")), None)
            res = json.loads(line) if line else None
        msgs = (res.get("msg_per_s") or 0) * (res.get("seconds") or 0) if res else 0
        if not counts or not msgs:
            notes.append(f"syscall count of {key[1]} in {key[0]} failed")
            continue
        out[key] = {"reads": sum(counts.get(n, 0) for n in READS) / msgs,
                    "writes": sum(counts.get(n, 0) for n in WRITES) / msgs}
        log(f"syscalls {key[0]} / {key[1]}: {out[key]['writes']:.3f} writes, {out[key]['reads']:.3f} reads "
            "per message")
    return out
