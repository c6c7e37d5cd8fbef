"""Load client for issue 12's benches: the room-history probe and the mass reconnect with
connection-state recovery. Everything it assumes about the (not yet final) protocol is in
recovery_protocol.py.

  probe  -P PORT [-u /primus] [--room defaultRoom]
         One client joins the room and says one message; prints what the server supports:
         {"history": bool, "recovery": bool, "reason": "..."}.
  run    -P PORT -S SERVER_PID [-c 1000] [-u /primus] [--room defaultRoom] [--before 5]
         [--missed 10] [--abort-action benchAbort] [-T 30]
         -c clients join the room and see --before messages. A control connection then calls
         the --abort-action action, which aborts every other WebSocket server-side at once, and
         says --missed more messages while they are away. Each client reconnects at once and
         sends its resume request; the time from the abort request to its `recovered` message
         is its recovery time. Then every recovered client must hold each missed offset exactly
         once, in order. The server's RSS is sampled every 50 ms from before the abort until
         the end.

One JSON line on stdout. Exit 0 ok; 3 measured, with failures (JSON says which); 4 the server
does not support it (JSON "supported": false and why); 1 the bench itself failed.
Every wait is bounded (-T per phase); the client is Python (websockets on uvloop): its own CPU
is reported as cpu_pct, and a client near 100 % makes the times an upper bound.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from typing import Any

from recovery_protocol import chat_position, recovery_outcome, recovery_token, resume_request
from serverproc import client_main, raise_fd_limit, rss_kib
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException


class Unsupported(Exception):
    """The server does not (yet) do what the bench needs."""


class Client:
    """One actionhero-protocol WebSocket client that remembers what recovery needs."""

    def __init__(self, url: str, room: str) -> None:
        self.url = url
        self.room = room
        self.ws: ClientConnection | None = None
        self.token: str | None = None
        self.got_token = asyncio.Event()
        self.positions: dict[str, tuple[int, Any]] = {}
        self.offsets: list[int] = []      # offsets of room messages received, in arrival order
        self.outcome: tuple[bool, str] | None = None
        self.t_outcome: float | None = None
        self.t_closed: float | None = None
        self.closed = asyncio.Event()
        self.changed = asyncio.Event()    # any room message or outcome arrived
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.fingerprint = os.urandom(20).hex()

    async def open(self, first: dict[str, Any] | None = None) -> None:
        self.closed.clear()
        # the same fingerprint on every connection (as a browser's cookie): the server binds a
        # recovery token to it
        self.ws = await connect(f"{self.url}?sessionID={self.fingerprint}", compression=None,
                                ping_interval=None, max_size=None, open_timeout=10)
        if first is not None:
            await self.ws.send(json.dumps(first))
        self.reader = asyncio.get_running_loop().create_task(self._read(self.ws))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._on_message(json.loads(raw), ws)
        except (WebSocketException, OSError, ValueError):
            pass
        finally:
            self.t_closed = time.monotonic()
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))
            self.pending.clear()
            self.closed.set()

    def _on_message(self, msg: Any, ws: ClientConnection) -> None:
        if isinstance(msg, str):
            if msg.startswith("primus::ping::"):
                asyncio.get_running_loop().create_task(ws.send(json.dumps("primus::pong::" + msg[14:])))
            return
        token = recovery_token(msg)
        if token:
            self.token = token
            self.got_token.set()
        pos = chat_position(msg)
        if pos and pos[0] == self.room:
            self.positions[self.room] = (pos[1], pos[2])
            self.offsets.append(pos[1])
            self.changed.set()
        outcome = recovery_outcome(msg)
        if outcome is not None:
            self.outcome = outcome
            self.t_outcome = time.monotonic()
            self.changed.set()
        if isinstance(msg, dict) and msg.get("context") == "response":
            fut = self.pending.pop(msg.get("messageId"), None)  # type: ignore[arg-type]
            if fut is not None and not fut.done():
                fut.set_result(msg)

    async def request(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.ws is not None
        self.next_id += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send(json.dumps({**payload, "messageId": self.next_id}))
        return await asyncio.wait_for(fut, timeout)

    async def join(self, timeout: float) -> None:
        r = await self.request({"event": "roomAdd", "room": self.room}, timeout)
        if r.get("status") != "OK":
            raise RuntimeError(f"roomAdd {self.room}: {r.get('error') or r}")

    async def say(self, message: str, timeout: float) -> None:
        await self.request({"event": "say", "room": self.room, "message": message}, timeout)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.wait({self.reader}, timeout=2)


async def wait_until(cond: Any, timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(step)
    return True


async def probe(a: argparse.Namespace) -> dict[str, Any]:
    """What the server supports: a token (recovery) and offsets on chat messages (history)."""
    c = Client(f"ws://127.0.0.1:{a.port}{a.path}", a.room)
    await c.open()
    try:
        await asyncio.wait({asyncio.ensure_future(c.got_token.wait())}, timeout=1.0)
        await c.join(a.timeout)
        await c.say("recovery-probe", a.timeout)
        await wait_until(lambda: bool(c.offsets), 1.0)
    finally:
        await c.close()
    history, recovery = bool(c.offsets), c.token is not None
    reasons = ([] if history else ["chat messages carry no offset (no room history)"]) + (
        [] if recovery else ["no recovery token from the server"])
    return {"mode": "probe", "history": history, "recovery": recovery, "reason": "; ".join(reasons)}


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run(a: argparse.Namespace) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{a.port}{a.path}"
    control = Client(url, a.room)
    await control.open()
    await control.join(a.timeout)
    await control.say("before 0", a.timeout)
    if not await wait_until(lambda: bool(control.offsets), 2.0):
        raise Unsupported("chat messages carry no offset (no room history)")
    if not await wait_until(lambda: control.token is not None, 1.0):
        raise Unsupported("no recovery token from the server")

    clients = [Client(url, a.room) for _ in range(a.clients)]

    async def setup(c: Client) -> None:
        await c.open()
        await asyncio.wait_for(c.got_token.wait(), a.timeout)
        await c.join(a.timeout)

    for i in range(0, len(clients), 100):  # bounded concurrency while connecting
        await asyncio.wait_for(asyncio.gather(*(setup(c) for c in clients[i:i + 100])), a.timeout)
    for n in range(a.before):
        await control.say(f"before {n + 1}", a.timeout)
    if not await wait_until(lambda: len(control.offsets) >= a.before + 1, a.timeout):
        raise RuntimeError("the control connection did not get its own messages")
    last_before = control.offsets[-1]
    if not await wait_until(lambda: all(c.positions.get(a.room, (-1,))[0] >= last_before for c in clients), a.timeout):
        raise RuntimeError("clients did not all receive the messages before the abort")
    for c in clients:
        c.offsets.clear()

    rss = {"before": rss_kib(a.server_pid), "peak": 0}

    async def sample_rss() -> None:
        while True:
            rss["peak"] = max(rss["peak"], rss_kib(a.server_pid))
            await asyncio.sleep(0.05)

    sampler = asyncio.get_running_loop().create_task(sample_rss())

    async def recover(c: Client) -> None:
        await asyncio.wait_for(c.closed.wait(), a.timeout)
        assert c.token is not None
        await c.open(first=resume_request(c.token, dict(c.positions)))
        await asyncio.wait_for(_outcome(c), a.timeout)

    async def _outcome(c: Client) -> None:
        while c.outcome is None:
            c.changed.clear()
            await c.changed.wait()

    cpu0, t0 = cpu_self(), time.monotonic()
    tasks = [asyncio.ensure_future(recover(c)) for c in clients]
    answer = await control.request({"event": "action", "params": {"action": a.abort_action}}, a.timeout)
    if answer.get("error"):
        raise Unsupported(f"abort action {a.abort_action!r}: {answer['error']}")
    for n in range(a.missed):
        await control.say(f"missed {n + 1}", a.timeout)
    done = await asyncio.gather(*tasks, return_exceptions=True)
    expected_last = last_before + a.missed
    await wait_until(lambda: all(c.offsets and c.offsets[-1] >= expected_last
                                 for c in clients if c.outcome and c.outcome[0]), 2.0)
    cpu1, t1 = cpu_self(), time.monotonic()
    sampler.cancel()
    rss["after"] = rss_kib(a.server_pid)

    times, reasons, lost, dup, disorder, failed, errors = [], {}, 0, 0, 0, 0, []
    for c, d in zip(clients, done, strict=True):
        if isinstance(d, BaseException):
            failed += 1
            if len(errors) < 3:
                errors.append(f"{type(d).__name__}: {d}")
            continue
        assert c.outcome is not None and c.t_outcome is not None
        if not c.outcome[0]:
            reasons[c.outcome[1] or "no reason"] = reasons.get(c.outcome[1] or "no reason", 0) + 1
            continue
        times.append(c.t_outcome - t0)
        want = set(range(last_before + 1, expected_last + 1))
        got = [o for o in c.offsets if o in want]
        lost += len(want - set(got))
        dup += len(got) - len(set(got))
        disorder += got != sorted(got)
    await asyncio.gather(control.close(), *(c.close() for c in clients), return_exceptions=True)
    times.sort()

    def pct(p: float) -> float | None:
        return round(times[min(len(times) - 1, int(p * len(times)))], 3) if times else None

    return {"mode": "recovery", "supported": True, "clients": a.clients, "recovered": len(times),
            "not_recovered": reasons, "failed": failed, "failures": errors,
            "p50_s": pct(0.50), "p99_s": pct(0.99), "max_s": round(times[-1], 3) if times else None,
            "mean_s": round(statistics.fmean(times), 3) if times else None,
            "missed_per_client": a.missed, "lost": lost, "duplicated": dup, "out_of_order": disorder,
            "rss_before_kib": rss["before"], "rss_peak_kib": rss["peak"], "rss_after_kib": rss["after"],
            "seconds": round(t1 - t0, 3), "cpu_pct": round(100 * (cpu1 - cpu0) / max(t1 - t0, 1e-9), 1),
            "errors": failed + sum(reasons.values()) + lost + dup + disorder}


async def guarded(a: argparse.Namespace) -> dict[str, Any]:
    try:
        return await (probe(a) if a.mode == "probe" else run(a))
    except Unsupported as e:
        return {"mode": a.mode, "supported": False, "reason": str(e)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("probe", "run"))
    ap.add_argument("-P", "--port", type=int, required=True)
    ap.add_argument("-S", "--server-pid", type=int, help="server PID (run: RSS samples)")
    ap.add_argument("-u", "--path", default="/primus")
    ap.add_argument("-c", "--clients", type=int, default=1000)
    ap.add_argument("--room", default="defaultRoom")
    ap.add_argument("--before", type=int, default=5, help="messages said before the abort [5]")
    ap.add_argument("--missed", type=int, default=10, help="messages said while the clients are away [10]")
    ap.add_argument("--abort-action", default="benchAbort")
    ap.add_argument("-T", "--timeout", type=float, default=30.0, help="bound of every phase, s [30]")
    a = ap.parse_args()
    if a.mode == "run" and not a.server_pid:
        ap.error("run needs -S SERVER_PID")
    if not (1 <= a.clients <= 5000 and 0 <= a.before <= 1000 and 0 <= a.missed <= 1000 and 0 < a.timeout <= 120):
        ap.error("clients 1..5000, before/missed 0..1000, timeout 0..120 s")
    raise_fd_limit()
    return client_main("recovery_load", guarded(a), 6 * a.timeout)


if __name__ == "__main__":
    sys.exit(main())
