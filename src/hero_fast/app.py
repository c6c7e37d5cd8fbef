"""The Api object: configuration, registries, boot order, start and graceful stop.

Boot order: config → connections, chat rooms, actions → the browser client
(``actionheroClient.js``/``.min.js``), built-in actions, then the
project's ``actions/``) → web and WebSocket servers → starting chat rooms →
the listening socket and the heartbeat. Stop: stop accepting, let in-flight
work finish (bounded by ``general.shutdownTimeout``), then close WebSockets
with 1001 — or, with ``destroyClientsOnShutdown``, send
``"primus::server::close"`` and close with 1000.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from hero_fast._transport import Server, serve
from hero_fast.actions import ActionRegistry
from hero_fast.chat import ChatRooms
from hero_fast.client_js import write_client
from hero_fast.cluster import create_backend
from hero_fast.config import engine_options, load_config
from hero_fast.connections import Connections
from hero_fast.logs import install_access_log
from hero_fast.metrics import setup_metrics
from hero_fast.servers.web import WebServer
from hero_fast.servers.websocket import WebSocketServer

__all__ = ["Api"]

log = logging.getLogger("hero_fast")


class _EngineHandler:
    """What the engine calls: WebSocket hooks from one server, HTTP from the other."""

    def __init__(self, websocket: WebSocketServer, web: WebServer) -> None:
        self.on_upgrade = websocket.on_upgrade
        self.on_connect = websocket.on_connect
        self.on_message = websocket.on_message
        self.on_data = websocket.on_data  # preferred by the engine: JSON parsed from the bytes
        self.on_close = websocket.on_close
        self.on_http = web.handle


class Api:
    """One hero-fast server process.

    ``Api(project_dir)`` loads the configuration (defaults, then the project's
    ``config/``, env vars, then ``overrides``); ``await api.start()`` boots and
    listens; ``await api.stop()`` shuts down gracefully; ``api.run()`` does both
    around SIGINT/SIGTERM.
    """

    def __init__(
        self,
        project_dir: str | Path | None = None,
        *,
        env: str | None = None,
        overrides: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.project_dir = Path(project_dir if project_dir is not None else os.getcwd()).resolve()
        if config is None:
            config, sources = load_config(self.project_dir, env=env, overrides=overrides)
        else:
            sources = {}
        self.config: dict[str, Any] = config
        self.config_sources: dict[str, str] = sources
        self.env: str = config.get("env") or env or os.environ.get("HERO_FAST_ENV", "development")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.started_at: float | None = None
        self.server: Server | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._booted = False
        self.connections = Connections(self)
        self.cluster = create_backend(self)  # memory (default) or Redis (redis_url): hero_fast.cluster
        self.chat_room = ChatRooms(self)
        self.actions = ActionRegistry(self)
        self.web = WebServer(self)
        self.websocket = WebSocketServer(self)
        self.metrics = setup_metrics(self)  # None unless metrics.enabled; serves metrics.path
        install_access_log(self)  # logging.accessLog

    # -- paths -----------------------------------------------------------------

    def _paths(self, kind: str) -> list[Path]:
        return [self.project_dir / p for p in self.config["general"]["paths"][kind]]

    @property
    def public_dir(self) -> Path:
        return self._paths("public")[0]

    # -- boot --------------------------------------------------------------------

    def boot(self) -> None:
        """Write the browser client, load actions, create the starting chat rooms (once)."""
        if self._booted:
            return
        write_client(self)  # public/<clientJsPath>/<clientJsName>.js, .min.js, .d.ts: rewritten every boot
        self.actions.load_builtins()
        for folder in self._paths("action"):
            if folder.is_dir():
                self.actions.load_folder(folder)
        for room in self.config["general"]["startingChatRooms"]:
            if not self.chat_room.exists(room):
                self.chat_room.add(room)
        self._booted = True

    def _ssl_context(self) -> ssl.SSLContext | None:
        web = self.config["servers"]["web"]
        if not web.get("certfile"):
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(web["certfile"], web.get("keyfile"))
        return context

    async def start(self, host: str | None = None, port: int | None = None, *, reuse_port: bool = False) -> None:
        """Boot and listen (``port=0`` picks a free port; see ``api.port``)."""
        self.loop = asyncio.get_running_loop()
        self.boot()
        web = self.config["servers"]["web"]
        await self.cluster.start()
        try:
            self.server = await serve(
                _EngineHandler(self.websocket, self.web),
                host if host is not None else web["host"],
                port if port is not None else web["port"],
                options=engine_options(self.config),
                ssl=self._ssl_context(),
                reuse_port=reuse_port,
            )
        except BaseException:
            await self.cluster.stop()
            raise
        self.websocket.start_heartbeat()
        self.started_at = time.time()
        log.info("hero-fast listening on %s:%s", host or web["host"], self.port)

    @property
    def port(self) -> int:
        if self.server is None:
            raise RuntimeError("the server is not started")
        return self.server.port

    def spawn(self, awaitable: Awaitable[Any], what: str) -> asyncio.Future[Any]:
        """Run ``awaitable`` as tracked work: stop waits for it, errors are logged."""
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._task_done(t, what))
        return task

    def _task_done(self, task: asyncio.Future[Any], what: str) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", what, exc_info=task.exception())

    async def stop(self) -> None:
        """Stop accepting, finish in-flight work (bounded), close every client."""
        server = self.server
        if server is None:
            return
        self.server = None
        server.close()
        if self._tasks:
            timeout = self.config["general"]["shutdownTimeout"]
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
        self.websocket.stop_heartbeat()
        self.websocket.close_all(self.config["servers"]["websocket"]["destroyClientsOnShutdown"])
        await server.shutdown(timeout=server.options.close_timeout)
        for conn in list(self.connections.by_id.values()):
            self.connections.destroy(conn)
        await self.cluster.stop()  # sweeps this node's members, then deregisters it

    # -- blocking entry point ---------------------------------------------------------

    def run(self, host: str | None = None, port: int | None = None, *, reuse_port: bool = False) -> None:
        """Serve until SIGINT or SIGTERM, then stop gracefully."""
        try:
            import uvloop
        except ImportError:  # Windows: plain asyncio
            asyncio.run(self._serve_forever(host, port, reuse_port))
        else:
            uvloop.run(self._serve_forever(host, port, reuse_port))

    async def _serve_forever(self, host: str | None, port: int | None, reuse_port: bool = False) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except NotImplementedError:  # pragma: no cover - Windows
                pass
        await self.start(host, port, reuse_port=reuse_port)
        web = self.config["servers"]["web"]
        scheme = "https" if web.get("certfile") else "http"
        print(f"hero-fast serving {self.project_dir} on {scheme}://{host or web['host']}:{self.port}/", flush=True)
        await stop.wait()
        await self.stop()
