"""Every server the suite measures, and which scenarios each one runs.

Row names (the columns of RESULTS.md): hero-fast, hero-fast+redis, hero-fast+history, the
limits "C epoll" and "raw uvloop", the peers picows, websockets, aiohttp, actionhero and
python-socketio. One name may stand for different processes in different scenarios (hero-fast
is `python -m hero_fast.echo` in the echo rows, the engine fan-out server in the fan-out row and
`hero-fast serve` in the action and room rows); the plan below says which.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field

from serverproc import Server

from .issue12 import ABORT_ACTION, HISTORY_ENV
from .privateredis import PrivateRedis
from .scenarios import HERE, MACRO, PY

REPO = os.path.dirname(HERE)
PEERS = os.path.join(MACRO, "peers")
AH_DIR = os.path.join(HERE, "peers", "actionhero")
BIN = os.path.dirname(sys.executable)

HF, HF_REDIS, HF_HISTORY = "hero-fast", "hero-fast+redis", "hero-fast+history"
C_EPOLL, RAW = "C epoll", "raw uvloop"
PICOWS, WEBSOCKETS, AIOHTTP, AH, SIO = "picows", "websockets", "aiohttp", "actionhero", "python-socketio"
LIMITS = (C_EPOLL, RAW)
REDIS_PREFIX = f"hf-bench-{os.getpid()}:"

ECHO = ["echo64x16", "echo64x1", "echo16k"]
APP = ["action-noid", "action", "roomfanout"]

HF_ACTION = '''from hero_fast.actions import Action, Input


class Echo(Action):
    name = "echo"
    description = "echo x and message back (benchmark)"
    inputs = {"x": Input(required=False), "message": Input(required=False)}

    async def run(self, data):
        data.response["x"] = data.params.get("x")
        data.response["message"] = data.params.get("message")
'''
# maxMessagesPerSecond 0 / maxConnections 0: the defaults (500 msg/s per connection, 10,000
# connections) are abuse limits that a load generator trips on purpose; actionhero has neither.
HF_CONFIG = '''DEFAULT = {
    "general": {"serverName": "bench", "startingChatRooms": {"defaultRoom": {}, "benchroom": {}}},
    "servers": {"websocket": {"maxMessagesPerSecond": 0, "maxConnections": 0}},
}
'''


def write_project(workdir: str) -> str:
    """The hero-fast project every `hero-fast serve` row runs: an echo action, the issue-12 abort
    action, two rooms, no abuse limits."""
    proj = os.path.join(workdir, "hfproj")
    for sub, name, text in (("actions", "echo.py", HF_ACTION), ("actions", "bench_abort.py", ABORT_ACTION),
                            ("config", "api.py", HF_CONFIG)):
        os.makedirs(os.path.join(proj, sub), exist_ok=True)
        with open(os.path.join(proj, sub, name), "w") as f:
            f.write(text)
    return proj


@dataclass
class Plan:
    """(server, scenarios) jobs, each started once per repeat; the idle-memory servers; the
    server behind each (scenario, row), for profiles; the rows that go through Redis; the
    server of issue 12's recovery bench."""
    jobs: list[tuple[Server, list[str]]] = field(default_factory=list)
    idle: list[Server] = field(default_factory=list)
    by_row: dict[tuple[str, str], Server] = field(default_factory=dict)
    via_redis: set[str] = field(default_factory=set)
    counted_redis: set[str] = field(default_factory=set)  # rows on the private Redis: commands counted
    history: Server | None = None

    def add(self, srv: Server, scenarios: list[str]) -> None:
        if scenarios:
            self.jobs.append((srv, scenarios))
            for sc in scenarios:
                self.by_row[(sc, srv.name)] = srv


def plan(workdir: str, skip: set[str], redis: PrivateRedis | None, hf_redis_url: str | None,
         actionhero: bool, quick: bool = False) -> Plan:
    """Jobs for every row not skipped. `redis`: the private Redis (actionhero's, and where its
    commands are counted); `hf_redis_url`: the Redis of the hero-fast+redis rows, None for none;
    `quick`: idle memory of hero-fast only."""
    proj = write_project(workdir)
    hf_bin = os.path.join(BIN, "hero-fast")
    serve = [hf_bin, "serve", "--project", proj, "--port", "{port}", "--log-level", "warning"]
    hf_echo = Server(HF, [PY, "-m", "hero_fast.echo", "--host", "127.0.0.1", "--port", "{port}"], cwd=REPO)
    hf_serve = Server(HF, serve, cwd=REPO, path="/primus", room=True)
    hf_fanout = Server(HF, [PY, os.path.join(PEERS, "hero_fast_fanout.py"), "--port", "{port}"], cwd=REPO)
    # a prefix of our own: --redis-url may point at a Redis that others use too
    hf_redis = Server(HF_REDIS, [*serve, "--redis-url", hf_redis_url], cwd=REPO, path="/primus", room=True,
                      env={"HERO_FAST__cluster__prefix": REDIS_PREFIX}) if hf_redis_url else None
    hf_history = Server(HF_HISTORY, serve, cwd=REPO, path="/primus", room=True, env=HISTORY_ENV)

    def peer(name: str, script: str, *extra: str) -> Server:
        return Server(name, [PY, os.path.join(PEERS, script), "--port", "{port}", *extra], cwd=REPO)

    ah = None
    if actionhero and redis:
        ah = Server(AH, ["node", "dist/server.js"], cwd=os.path.join(AH_DIR, "app"),
                    env={"PORT": "{port}", "REDIS_PORT": str(redis.port), "REDIS_HOST": "127.0.0.1",
                         "LOG_LEVEL": "warning", "BENCH_NO_FILE_LOG": "1"},
                    path="/primus", room=True, settle=1.5, pre=redis.flush)

    def wanted(sc: str) -> bool:  # --skip action / fanout drop the action / room rows too
        return sc not in skip and ("action" if sc.startswith("action") else "fanout") not in skip

    p = Plan()
    app = [sc for sc in APP if wanted(sc)]
    if "echo" not in skip:
        for srv in (hf_echo, peer(PICOWS, "picows_echo.py"), peer(WEBSOCKETS, "websockets_echo.py"),
                    peer(AIOHTTP, "aiohttp_echo.py"), peer(RAW, "raw_uvloop_echo.py", "--passthrough"),
                    Server(C_EPOLL, [os.path.join(MACRO, "epoll_server"), "echo", "-P", "{port}"])):
            p.add(srv, ECHO)
    p.add(hf_serve, app)
    if hf_redis:
        p.add(hf_redis, app)
        p.via_redis.add(HF_REDIS)
        if redis and hf_redis_url == redis.url:
            p.counted_redis.add(HF_REDIS)
    if ah:
        p.add(ah, app)
        p.via_redis.add(AH)
        p.counted_redis.add(AH)
    if "fanout" not in skip:
        for srv in (hf_fanout, peer(PICOWS, "picows_fanout.py"), peer(WEBSOCKETS, "websockets_broadcast.py"),
                    Server(C_EPOLL, [os.path.join(MACRO, "epoll_server"), "broadcast", "-P", "{port}"])):
            p.add(srv, ["fanout"])
    if "socketio" not in skip:
        p.add(peer(SIO, "socketio_server.py"), ["sio-action", "sio-fanout"])
    if "history" not in skip and "fanout" not in skip:
        p.add(hf_history, ["roomfanout"])
    if "recovery" not in skip:
        p.history = hf_history
    if "idle" not in skip:
        p.idle = [hf_serve] if quick else [hf_serve, *([ah] if ah else []), peer(PICOWS, "picows_echo.py")]
    return p


def actionhero_possible() -> str | None:
    """Why the actionhero peer cannot run here, or None."""
    if not shutil.which("node"):
        return "node is not installed"
    if not PrivateRedis.available():
        return "redis-server is not installed"
    return None
