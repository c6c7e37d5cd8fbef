"""recovery_load.py (issue 12's recovery bench) against a fake server that implements the
protocol recovery_protocol.py assumes, and against one without history: the bench measures the
first and reports the second as not supported (exit 4), never as a failure."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from typing import Any

from fakes import ThreadedServer
from websockets.asyncio.server import ServerConnection

PY = sys.executable


class FakeRecoveryServer:
    def __init__(self, history: bool) -> None:
        self.history = history
        self.members: dict[str, set[ServerConnection]] = {"defaultRoom": set()}
        self.log: dict[str, list[dict[str, Any]]] = {"defaultRoom": []}
        self.rooms_of_token: dict[str, set[str]] = {}

    async def say(self, room: str, message: Any) -> None:
        msg: dict[str, Any] = {"message": message, "room": room, "context": "user"}
        if self.history:
            msg.update(offset=len(self.log[room]) + 1, epoch="e1")
            self.log[room].append(msg)
        for ws in list(self.members[room]):
            try:
                await ws.send(json.dumps(msg))
            except Exception:
                self.members[room].discard(ws)

    async def handler(self, ws: ServerConnection) -> None:
        token = secrets.token_hex(8)
        self.rooms_of_token[token] = set()
        await ws.send(json.dumps({"welcome": "hi", "context": "api", "recovery": {"token": token, "ttl": 120000}}))
        try:
            async for raw in ws:
                req = json.loads(raw)
                mid, ev = req.get("messageId"), req.get("event")
                if ev == "recover":
                    rooms = self.rooms_of_token.pop(req["token"], None)
                    if rooms is None:
                        await ws.send(json.dumps({"status": "OK", "context": "response", "messageId": mid,
                                                  "data": {"recovered": False, "reason": "expired"}}))
                        continue
                    self.rooms_of_token[token] = rooms
                    for room in rooms:
                        sent = req["offsets"][room]["offset"]
                        while sent < len(self.log[room]):  # replay, including what is said meanwhile
                            sent += 1
                            await ws.send(json.dumps(self.log[room][sent - 1]))
                        self.members[room].add(ws)  # live from here: no await since the last check
                    await ws.send(json.dumps({"status": "OK", "context": "response", "messageId": mid,
                                              "data": {"recovered": True}}))
                elif ev == "roomAdd":
                    self.members[req["room"]].add(ws)
                    self.rooms_of_token[token].add(req["room"])
                    await ws.send(json.dumps({"status": "OK", "context": "response", "messageId": mid}))
                elif ev == "say":
                    await ws.send(json.dumps({"status": "OK", "context": "response", "messageId": mid}))
                    await self.say(req["room"], req["message"])
                elif ev == "action" and req["params"]["action"] == "benchAbort":
                    others = [w for room in self.members.values() for w in room if w is not ws]
                    for room in self.members.values():
                        room.intersection_update({ws})
                    for w in others:
                        w.transport.abort()
                    await ws.send(json.dumps({"aborted": len(others), "context": "response", "messageId": mid}))
        finally:
            for room in self.members.values():
                room.discard(ws)



def recovery_load(built: str, *args: str) -> tuple[int, dict[str, Any]]:
    r = subprocess.run([PY, os.path.join(built, "recovery_load.py"), *args], capture_output=True, text=True,
                       timeout=120)
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "{}"
    return r.returncode, dict(json.loads(line))


def test_mass_reconnect_recovers_every_client_with_nothing_lost(built: str) -> None:
    with ThreadedServer(FakeRecoveryServer(history=True).handler) as srv:
        code, res = recovery_load(built, "run", "-P", str(srv.port), "-S", str(os.getpid()), "-u", "/",
                                  "-c", "40", "--missed", "7", "-T", "10")
    assert code == 0, res
    assert res["recovered"] == 40 and res["failed"] == 0 and res["not_recovered"] == {}
    assert (res["lost"], res["duplicated"], res["out_of_order"]) == (0, 0, 0)
    assert 0 < res["p50_s"] <= res["p99_s"] <= res["max_s"]
    assert res["rss_peak_kib"] >= res["rss_before_kib"] > 0


def test_probe_and_run_report_a_server_without_history_as_unsupported(built: str) -> None:
    with ThreadedServer(FakeRecoveryServer(history=False).handler) as srv:
        port = str(srv.port)
        code, res = recovery_load(built, "probe", "-P", port, "-u", "/")
        assert code == 0 and res["history"] is False and res["recovery"] is True
        code, res = recovery_load(built, "run", "-P", port, "-S", str(os.getpid()), "-u", "/", "-c", "5", "-T", "5")
    assert code == 4 and res["supported"] is False and "offset" in res["reason"]
