"""Built-in actions: ``status`` and ``documentation``."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any

from hero_fast.actions.action import Action, ActionData

if TYPE_CHECKING:
    from hero_fast.actions.registry import ActionRegistry

__all__ = ["ACTIONHERO_PROTOCOL_VERSION", "DocumentationAction", "StatusAction"]

ACTIONHERO_PROTOCOL_VERSION = "29.3.5"
"""The actionhero release whose wire protocol hero-fast speaks (docs/protocol.md was
observed from it): what ``status`` reports as ``actionheroVersion``, so that front-ends and
monitors written for actionhero read a version they know. hero-fast's own version is
``heroFastVersion``."""


def _server_id(api: Any) -> str:
    config = getattr(api, "config", None)
    general = config.get("general") if isinstance(config, dict) else None
    if isinstance(general, dict):
        for key in ("id", "serverName"):
            value = general.get(key)
            if value:
                return str(value)
    value = getattr(api, "id", None)
    if isinstance(value, str) and value:
        return value
    return socket.gethostname()


def _started(api: Any, fallback: float) -> float:
    """When the server started (epoch s): ``api.started_at`` (epoch s) or
    ``api.boot_time`` (epoch ms) when set, else when the registry was made."""
    for attr in ("started_at", "boot_time"):
        value = getattr(api, attr, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return value / 1000.0 if value > 1e11 else float(value)
    return fallback


class StatusAction(Action):
    name = "status"
    description = (
        "Reports the health of this server: id, versions (heroFastVersion; actionheroVersion: the actionhero "
        "release whose protocol it speaks), uptime, connections."
    )
    version = 1
    output_example = {
        "id": "my-server",
        "actionheroVersion": ACTIONHERO_PROTOCOL_VERSION,
        "heroFastVersion": "0.1.0",
        "uptime": 10_843,
        "nodeStatus": "Node Healthy",
        "problems": [],
        "connections": 12,
    }

    def __init__(self, registry: ActionRegistry) -> None:
        self.registry = registry

    def run(self, data: ActionData) -> dict[str, Any]:
        import hero_fast

        api = self.registry.api
        uptime = int((time.time() - _started(api, self.registry.started_at)) * 1000)
        out: dict[str, Any] = {
            "id": _server_id(api),
            "actionheroVersion": ACTIONHERO_PROTOCOL_VERSION,
            "heroFastVersion": getattr(hero_fast, "__version__", "0"),
            "uptime": uptime,
            "nodeStatus": "Node Healthy",
            "problems": [],
        }
        connections = getattr(api, "connections", None)
        if connections is not None:
            try:
                out["connections"] = len(connections)
            except TypeError:
                pass
        return out


class DocumentationAction(Action):
    name = "documentation"
    description = "Lists every action with its versions, description and inputs."
    version = 1
    output_example = {
        "documentation": {
            "status": {
                "1": {
                    "name": "status",
                    "version": 1,
                    "description": "...",
                    "inputs": {},
                    "outputExample": {},
                }
            }
        }
    }

    def __init__(self, registry: ActionRegistry) -> None:
        self.registry = registry

    def run(self, data: ActionData) -> dict[str, Any]:
        return {"documentation": self.registry.documentation()}
