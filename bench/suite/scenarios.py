"""The macro scenarios: what each one measures and the client command that measures it.

Every scenario but the python-socketio ones is driven by the C load generator
(bench/macro/loadgen), so the client costs the same for every server.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from serverproc import Server

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MACRO = os.path.join(HERE, "macro")
LOADGEN = os.path.join(MACRO, "loadgen")
PY = sys.executable

ROOM_JOIN = '{"event":"roomAdd","room":"defaultRoom"}'
SAY = '{"event":"say","room":"defaultRoom","message":"BENCHMSG {n}"}'
FAN_RECEIVERS = 1000
FAN_BURST = 16


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    unit: str


SCENARIOS = {s.key: s for s in (
    Scenario("echo64x16", "echo 64 B, 100 conns x 16 in flight", "msg/s"),
    Scenario("echo64x1", "echo 64 B, 100 conns x 1 in flight", "msg/s"),
    Scenario("echo16k", "echo 16 KiB, 10 conns x 4 in flight", "msg/s"),
    Scenario("action-noid", "action round trip, 50 conns x 1, no messageId", "req/s"),
    Scenario("action", "action round trip, 50 conns x 1, with messageId", "req/s"),
    Scenario("fanout", f"engine fan-out 1 -> {FAN_RECEIVERS:,}, bursts of {FAN_BURST} (no rooms)", "deliveries/s"),
    Scenario("roomfanout", f"room fan-out through `say`, 1 -> {FAN_RECEIVERS:,}, bursts of {FAN_BURST}",
             "deliveries/s"),
    Scenario("sio-action", "python-socketio echo call, 50 clients x 1 (Python client)", "req/s"),
    Scenario("sio-fanout", "python-socketio room fan-out (Python client)", "deliveries/s"),
)}
LOADGEN_SCENARIOS = [k for k in SCENARIOS if not k.startswith("sio-")]


def client_argv(key: str, srv: Server, port: int, pid: int, duration: float, warmup: float,
                sio_receivers: int = FAN_RECEIVERS) -> list[str]:
    """The client command that runs scenario `key` against `srv` listening on `port`."""
    d, w = str(duration), str(warmup)
    if key.startswith("sio-"):
        argv = [PY, os.path.join(MACRO, "socketio_load.py"), key[4:], "-P", str(port), "-d", d, "-w", w,
                "-S", str(pid)]
        return argv + (["-c", str(sio_receivers), "-p", str(FAN_BURST)] if key == "sio-fanout" else [])
    common = ["-u", srv.path, "-d", d, "-w", w, "-P", str(port), "-S", str(pid)]
    if key == "echo64x16":
        return [LOADGEN, "echo", "-c", "100", "-p", "16", "-s", "64", *common]
    if key == "echo64x1":
        return [LOADGEN, "echo", "-c", "100", "-p", "1", "-s", "64", *common]
    if key == "echo16k":
        return [LOADGEN, "echo", "-c", "10", "-p", "4", "-s", "16384", *common]
    if key in ("action", "action-noid"):
        return [LOADGEN, "action", "-c", "50", "-p", "1", "-W", "1", *(["-I"] if key == "action-noid" else []),
                *common]
    if key in ("fanout", "roomfanout"):
        join = ["-J", ROOM_JOIN, "-W", "2"] if key == "roomfanout" else []
        return [LOADGEN, "fanout", "-c", str(FAN_RECEIVERS), "-p", str(FAN_BURST), *join, "-m", SAY,
                "-k", "BENCHMSG", "-T", "10", *common]
    raise KeyError(key)
