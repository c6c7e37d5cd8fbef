"""The generated browser client: ``actionheroClient.js``, ``.min.js`` and ``.d.ts``.

At boot, :func:`write_client` renders the template ``actionheroClient.js`` (beside this
module) with the ``servers.websocket`` config and writes it to
``<public>/<clientJsPath>/<clientJsName>.js``, a minified twin (``rjsmin``) as ``.min.js``
and the TypeScript declarations as ``.d.ts``. The web server then serves them as static
files.

What is baked in:

- ``clientUrl``: ``"window.location.origin"`` (the default: the page's own origin), a fixed
  URL (``"https://api.example.com"``, emitted as a string), or any other JavaScript
  expression (emitted as it is, e.g. ``"'https://' + location.hostname + ':8443'"``);
  the client turns ``http(s)://`` into ``ws(s)://`` and appends ``server.pathname``.
- ``client.*`` (reconnect, timeout, ping, pong, strategy, queueSize, ...), the upgrade path
  and the fingerprint cookie name, as a JSON literal that is safe inside ``<script>``
  (``<``, ``>``, ``&`` and every non-ASCII character, U+2028/U+2029 included, escaped).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hero_fast.app import Api

__all__ = ["TEMPLATE_NAME", "minify", "render", "render_all", "url_expression", "write_client"]

TEMPLATE_NAME = "actionheroClient.js"
DECLARATIONS_NAME = "actionheroClient.d.ts"

_PLACEHOLDER = re.compile(r"/\*@@(\w+)\*/.*?/\*@@end\*/", re.S)
_FIXED_URL = re.compile(r"(?i)(?:https?|wss?)://[^\s\"'`\\<>]+")
_SAFE_NAME = re.compile(r"[^/\\\x00]+")


def _template(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def js_literal(value: Any) -> str:
    """``value`` as a JSON literal that is also safe to inline in an HTML ``<script>``."""
    text = json.dumps(value, ensure_ascii=True, allow_nan=False, sort_keys=False, indent=2)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def url_expression(client_url: str) -> str:
    """The JavaScript expression for config ``clientUrl``: a fixed URL becomes a string
    literal, anything else is taken as an expression (``window.location.origin``)."""
    value = client_url.strip()
    if not value:
        raise ValueError("servers.websocket.clientUrl must not be empty")
    if _FIXED_URL.fullmatch(value):
        return js_literal(value)
    # An expression is JavaScript by design; only make it safe to inline in HTML. Inside a
    # string or regex literal (where these can sensibly appear) the escapes mean the same.
    value = re.sub(r"(?i)</(script)", r"<\\/\1", value)
    return value.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _unbounded(value: Any) -> Any:
    """None for "no limit" (JSON has no Infinity; the client reads null as Infinity)."""
    if isinstance(value, float) and value == float("inf"):
        return None
    return value


def client_options(config: dict[str, Any]) -> dict[str, Any]:
    """The options baked into the client, from the loaded config."""
    ws = config["servers"]["websocket"]
    client = ws.get("client", {})
    reconnect = client.get("reconnect", {})
    strategy = client.get("strategy", ["online", "timeout", "disconnect"])
    return {
        "pathname": ws.get("server", {}).get("pathname", "/primus"),
        "cookieKey": config["servers"]["web"].get("fingerprint", {}).get("cookieKey", "sessionID"),
        "apiPath": client.get("apiPath", "/api"),
        "reconnect": {
            "min": reconnect.get("min", 500),
            "max": _unbounded(reconnect.get("max")),
            "retries": _unbounded(reconnect.get("retries", 10)),
            "factor": reconnect.get("factor", 2),
        },
        "timeout": client.get("timeout", 10000),
        "ping": client.get("ping", 25000),
        "pong": client.get("pong", 10000),
        "strategy": list(strategy) if strategy else False,
        "manual": client.get("manual", False),
        "websockets": client.get("websockets", True),
        "network": client.get("network", True),
        "transport": dict(client.get("transport") or {}),
        "queueSize": _unbounded(client.get("queueSize")),
    }


def render(config: dict[str, Any]) -> str:
    """The text of ``actionheroClient.js`` for this config."""
    from hero_fast import __version__

    values = {
        "defaults": js_literal(client_options(config)),
        "url": url_expression(str(config["servers"]["websocket"].get("clientUrl", "window.location.origin"))),
    }
    seen: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        seen.add(name)
        return values[name]

    template = "".join(
        line for line in _template(TEMPLATE_NAME).splitlines(keepends=True) if not line.startswith("// template:")
    )
    text = _PLACEHOLDER.sub(fill, template)
    if seen != set(values):  # pragma: no cover - a broken template
        raise RuntimeError(f"the client template lacks placeholders {sorted(set(values) - seen)}")
    return text.replace("@@VERSION@@", __version__)


def minify(js: str) -> str:
    """``js`` minified by rjsmin (whitespace and comments; ``/*! */`` banners kept)."""
    import rjsmin  # type: ignore[import-untyped]

    return str(rjsmin.jsmin(js, keep_bang_comments=True)) + "\n"


def render_all(config: dict[str, Any]) -> dict[str, str]:
    """``{".js": ..., ".min.js": ..., ".d.ts": ...}`` for this config."""
    js = render(config)
    return {".js": js, ".min.js": minify(js), ".d.ts": _template(DECLARATIONS_NAME)}


def _target_dir(api: Api, js_path: str) -> Path:
    public = api.public_dir.resolve()
    target = (public / js_path).resolve()
    if target != public and public not in target.parents:
        raise ValueError(f"servers.websocket.clientJsPath {js_path!r} leads outside the public folder {public}")
    return target


def _write_atomic(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` via a temp file and a rename; False when it already held it."""
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False  # unchanged: keep its mtime, so ETags and caches stay valid
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True


def write_client(api: Api) -> list[Path]:
    """Write the browser client into the public folder (called at every boot).

    Writes ``<public>/<clientJsPath>/<clientJsName>`` + ``.js``, ``.min.js`` and ``.d.ts``
    (folders created, each file replaced atomically, a file already holding the same text
    left alone) and returns their paths. Writes nothing when the WebSocket server is
    disabled, ``clientJsName`` is None or ``clientJsPath`` is None or empty.
    """
    ws = api.config["servers"]["websocket"]
    name = ws.get("clientJsName")
    js_path = ws.get("clientJsPath")
    if not ws.get("enabled", True) or name is None or not js_path:
        return []
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"servers.websocket.clientJsName {name!r} must be a plain file name (no folders)")
    target = _target_dir(api, js_path)
    files = render_all(api.config)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, text in files.items():
        path = target / f"{name}{suffix}"
        _write_atomic(path, text)
        written.append(path)
    return written
