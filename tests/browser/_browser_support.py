"""Helpers and fixtures: the generated browser client in a real headless Chromium, against a live Api.

Needs Debian's ``chromium`` (``/usr/bin/chromium``, or ``HERO_FAST_CHROMIUM``) and the
Python ``playwright`` package (its own browser downloads are never used). Without them the
tests skip, except under CI (env ``CI`` set), where they fail.

Each test gets a fresh project (actions, public files, a test page loading
``/javascript/actionheroClient.js`` or ``.min.js``), a live Api on a free loopback port
whose public folder the client was written into, and a fresh browser context (cookies
included). ``H`` in the page (``harness.js``) creates clients and records their events.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from hero_fast.app import Api
from hero_fast.client_js import write_client

CHROMIUM = os.environ.get("HERO_FAST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
VARIANTS = ["js", "min.js"]

ACTIONS = textwrap.dedent(
    """
    import asyncio
    from hero_fast.actions import Action, Input

    class Echo(Action):
        name = "echo"
        description = "echoes x"
        inputs = {"x": Input(required=True), "y": Input(default=7)}

        def run(self, data):
            return {"x": data.params["x"], "y": data.params["y"]}

    class Slow(Action):
        name = "slow"
        description = "waits ms milliseconds"
        inputs = {"ms": Input(default=200, formatter=int)}

        async def run(self, data):
            await asyncio.sleep(data.params["ms"] / 1000)
            data.response["slept"] = data.params["ms"]
    """
)

HARNESS_JS = textwrap.dedent(
    """
    "use strict";
    // Test harness: H.make(name, options) builds a client that records every event.
    window.H = {
      clients: {},
      events: ["connected", "disconnected", "error", "reconnect", "reconnecting", "message",
               "alert", "api", "welcome", "say", "offline", "online", "recovered"],
      plain: function (value) {
        if (value instanceof Error) return { error: value.message };
        if (Array.isArray(value)) return value.map(H.plain);
        try { return JSON.parse(JSON.stringify(value === undefined ? null : value)); }
        catch (e) { return String(value); }
      },
      make: function (name, options) {
        var client = new ActionheroClient(options);
        client.seen = [];
        H.events.forEach(function (event) {
          client.on(event, function (arg) {
            client.seen.push({ event: event, arg: H.plain(arg), state: client.state, t: Date.now() });
          });
        });
        H.clients[name] = client;
        return client;
      },
      count: function (name, event) {
        return H.clients[name].seen.filter(function (e) { return e.event === event; }).length;
      },
      seen: function (name, event) {
        return H.clients[name].seen.filter(function (e) { return e.event === event; })
          .map(function (e) { return e.arg; });
      },
      // Run a client method and keep its outcome: H.results[key] = {value} once settled.
      results: {},
      call: function (key, name, method, args) {
        var client = H.clients[name];
        H.results[key] = undefined;
        var settle = function () {
          var value = arguments.length > 1 ? Array.prototype.slice.call(arguments) : arguments[0];
          H.results[key] = { value: H.plain(value), at: Date.now() };
        };
        var out = client[method].apply(client, (args || []).concat([settle]));
        return out === undefined;
      }
    };
    """
)


def page_html(script: str) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>client test</title>'
        f'<script src="/javascript/{script}"></script><script src="/harness.js"></script>'
        "</head><body><p>hero-fast client test</p></body></html>\n"
    )


def make_project(root: Path) -> Path:
    (root / "actions").mkdir(parents=True)
    (root / "actions" / "test_actions.py").write_text(ACTIONS)
    public = root / "public"
    public.mkdir()
    (public / "test-js.html").write_text(page_html("actionheroClient.js"))
    (public / "test-min.js.html").write_text(page_html("actionheroClient.min.js"))
    (public / "harness.js").write_text(HARNESS_JS)
    (public / "hello.txt").write_text("hello from a file \u2713\n", encoding="utf-8")
    (public / "blob.bin").write_bytes(bytes(range(256)))
    return root


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# Fast reconnects and no server heartbeat unless a test asks for them.
BASE_OVERRIDES: dict[str, Any] = {
    "general": {"startingChatRooms": {"defaultRoom": {}, "anotherRoom": {}}},
    "servers": {
        "websocket": {
            "server": {"pingInterval": 0},
            "client": {"reconnect": {"min": 100, "max": 400, "retries": 40, "factor": 2}},
            "closeTimeout": 2,
        }
    },
}


class LiveServer:
    """A live Api on loopback; ``restart()`` brings a new Api up on the same port."""

    def __init__(self, project: Path, overrides: dict[str, Any] | None = None) -> None:
        self.project = project
        self.overrides = merge(BASE_OVERRIDES, overrides or {})
        self.api: Api | None = None
        self.port = 0
        self.written: list[Path] = []

    async def start(self, port: int | None = None) -> Api:
        api = Api(self.project, overrides=self.overrides)
        self.written = write_client(api)
        for attempt in range(50):
            try:
                await api.start(host="127.0.0.1", port=self.port if port is None else port)
                break
            except OSError:  # the port may linger for a moment after a stop
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        self.api = api
        self.port = api.port
        return api

    async def stop(self) -> None:
        api, self.api = self.api, None
        if api is not None:
            await asyncio.wait_for(api.stop(), 10)

    async def restart(self) -> Api:
        await self.stop()
        return await self.start(self.port)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def connections(self) -> list[Any]:
        assert self.api is not None
        return [c for c in self.api.connections.by_id.values() if c.type == "webSocket"]


def _unavailable() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError as e:
        return f"the Python package playwright is not installed ({e}); pip install playwright"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set HERO_FAST_CHROMIUM)"
    return None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        # launch() gives the browser a fresh temporary profile (user-data dir) of its own.
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=30000)
        try:
            yield b
        finally:
            await b.close()


class Browser:
    """One fresh browser context (own cookies) with helpers; pages record errors."""

    def __init__(self, context: Any, server: LiveServer, variant: str) -> None:
        self.context = context
        self.server = server
        self.variant = variant
        self.page_errors: list[str] = []

    async def page(self, path: str | None = None) -> Any:
        page = await self.context.new_page()
        page.set_default_timeout(8000)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        await page.goto(self.server.url(path or f"/test-{self.variant}.html"))
        return page


async def js(page: Any, code: str, arg: Any = None) -> Any:
    """Evaluate ``code`` (a function expression or an expression) in the page."""
    return await page.evaluate(code, arg)


async def until(page: Any, predicate: str, arg: Any = None, timeout: float = 8000) -> Any:
    """Wait until the JS ``predicate`` (a function of arg) is truthy; return its value."""
    handle = await page.wait_for_function(predicate, arg=arg, timeout=timeout, polling=25)
    return await handle.json_value()


async def result(page: Any, key: str, timeout: float = 8000) -> Any:
    """The settled value of ``H.call(key, ...)``."""
    return (await until(page, "(k) => H.results[k]", key, timeout))["value"]


async def connected_client(page: Any, name: str = "a", options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Make client ``name`` in the page, connect it, return its details response."""
    return await js(  # type: ignore[no-any-return]
        page, "async ([name, options]) => H.make(name, options).connect()", [name, options]
    )


async def client_state(page: Any, name: str = "a") -> dict[str, Any]:
    return await js(  # type: ignore[no-any-return]
        page,
        """(name) => { const c = H.clients[name]; return { state: c.state, id: c.id,
             fingerprint: c.fingerprint, rooms: c.rooms, details: c.details,
             events: c.seen.map((e) => e.event) }; }""",
        name,
    )


async def events(page: Any, name: str, event: str) -> list[Any]:
    return await js(page, "([n, e]) => H.seen(n, e)", [name, event])  # type: ignore[no-any-return]


async def wait_for(predicate: Any, timeout: float = 8.0, what: str = "a condition") -> None:
    """Poll a Python predicate on the loop until true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture(params=VARIANTS)
def variant(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    return {}


@pytest_asyncio.fixture(loop_scope="module")
async def server(tmp_path: Path, server_overrides: dict[str, Any]) -> AsyncIterator[LiveServer]:
    live = LiveServer(make_project(tmp_path / "project"), server_overrides)
    await live.start()
    try:
        yield live
    finally:
        await live.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def chrome(browser: Any, server: LiveServer, variant: str) -> AsyncIterator[Browser]:
    context = await browser.new_context()
    b = Browser(context, server, variant)
    try:
        yield b
    finally:
        await context.close()
    assert not b.page_errors, f"uncaught errors in the page: {b.page_errors}"


def node() -> str | None:
    return shutil.which("node")


def dumps(value: Any) -> str:
    return json.dumps(value)
