"""Issue 12's two benches, prepared before the feature lands: room fan-out with history on vs
off, and 1,000 clients aborted server-side at once that reconnect with recovery.

Both skip cleanly (a note in RESULTS.md, no failure) until the server supports them:
bench/macro/recovery_load.py `probe` checks that chat messages carry an offset (history) and
that the server hands out a recovery token (recovery) before anything is measured.

ASSUMED here, to adapt when the feature is final (the wire side is in
bench/macro/recovery_protocol.py):
- room history is switched on per room by a ``history`` entry in its
  ``general.startingChatRooms`` options (set through the generic env form of the config);
- an action can reach every live connection through ``data.connection.api.connections.by_id``
  and abort a WebSocket with ``connection.ws.abort()`` (what the bench project's ``benchAbort``
  action does, to disconnect everyone server-side at once).
"""
from __future__ import annotations

import json
import os

from .scenarios import MACRO, PY

HISTORY_ROOMS = {"defaultRoom": {"history": {"size": 1000, "ttl": 120000}}, "benchroom": {}}
HISTORY_ENV = {"HERO_FAST__general__startingChatRooms": json.dumps(HISTORY_ROOMS, separators=(",", ":"))}

ABORT_ACTION_NAME = "benchAbort"
ABORT_ACTION = '''from hero_fast.actions import Action


class BenchAbort(Action):
    """Bench only (issue 12 recovery bench): abort every other WebSocket server-side at once."""

    name = "benchAbort"
    description = "abort every other WebSocket connection (benchmark)"

    async def run(self, data):
        me = data.connection
        aborted = 0
        for conn in list(me.api.connections.by_id.values()):
            ws = getattr(conn, "ws", None)
            if conn is not me and ws is not None:
                ws.abort()
                aborted += 1
        data.response["aborted"] = aborted
'''

RECOVERY_CLIENTS = 1000
RECOVERY_P99_S = 2.0


def probe_argv(port: int, path: str) -> list[str]:
    return [PY, os.path.join(MACRO, "recovery_load.py"), "probe", "-P", str(port), "-u", path, "-T", "5"]


def recovery_argv(port: int, pid: int, path: str, clients: int) -> list[str]:
    return [PY, os.path.join(MACRO, "recovery_load.py"), "run", "-P", str(port), "-S", str(pid), "-u", path,
            "-c", str(clients), "--abort-action", ABORT_ACTION_NAME, "-T", "20"]
