"""The Api object: configuration, the project's code, boot order, start and graceful stop.

Boot (``await api.start()``): config (already loaded by the constructor) → the project's
code (:meth:`Api.load`: initializers, middleware, built-in and project actions, routes —
every mistake is a one-line :class:`~hero_fast.project.ProjectError` before anything runs)
→ initializers' ``initialize`` → the browser client (``actionheroClient.js``/``.min.js``)
→ the cluster backend → starting chat rooms → initializers' ``start`` → the listening
socket and the heartbeat.

Stop (``await api.stop()``): stop accepting → refuse new actions (503) and let in-flight
ones finish within ``general.shutdownTimeout``; those still running then are cut, and
their callers get an error reply → close WebSockets with 1001 (or, with
``destroyClientsOnShutdown``, ``"primus::server::close"`` and 1000) → initializers'
``stop`` in reverse order → the cluster backend. Each step is logged. Under
:meth:`Api.run`, a second SIGINT/SIGTERM during the stop exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import sys
import time
import types
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from hero_fast._transport import Server, serve
from hero_fast.actions import ActionRegistry
from hero_fast.chat import ChatError, ChatRooms
from hero_fast.client_js import write_client
from hero_fast.cluster import create_backend
from hero_fast.cluster.workers import notify_ready
from hero_fast.config import ConfigError, engine_options, load_config
from hero_fast.connections import Connections
from hero_fast.initializers import Initializers
from hero_fast.logs import install_access_log
from hero_fast.metrics import setup_metrics
from hero_fast.middleware import ActionMiddleware, ChatMiddleware, ConnectionMiddleware
from hero_fast.project import ProjectError, find_middleware, load_initializers
from hero_fast.project.imports import where
from hero_fast.recovery import Recovery
from hero_fast.routes import RouteTable
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

    What a project's code uses: ``config``, ``state`` (a namespace for what initializers
    open and actions use: ``api.state.db``), ``actions``, ``connections`` (with the push
    API ``send``/``broadcast``), ``chat_room``, ``initializers`` (by name), ``routes``.
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
        #: the project's own things, shared by initializers and actions (``api.state.db``)
        self.state = types.SimpleNamespace()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._loaded = False
        self._running = False
        self.initializers = Initializers(self.project_dir)
        self.connections = Connections(self)
        self.cluster = create_backend(self)  # memory (default) or Redis (redis_url): hero_fast.cluster
        self.recovery = Recovery(self)  # connection state recovery (recovery.maxDisconnectionDuration)
        self.chat_room = ChatRooms(self)
        self.actions = ActionRegistry(self)
        self.routes = RouteTable(config["routes"])
        self.web = WebServer(self)
        self.websocket = WebSocketServer(self)
        self.metrics = setup_metrics(self)  # None unless metrics.enabled; serves metrics.path

    # -- paths -----------------------------------------------------------------

    def _paths(self, kind: str) -> list[Path]:
        return [self.project_dir / p for p in self.config["general"]["paths"][kind]]

    @property
    def public_dir(self) -> Path:
        return self._paths("public")[0]

    # -- the project's code ------------------------------------------------------------

    def load(self) -> None:
        """Import the project's code once: initializers, middleware, actions (built-in ones
        first; a project action of the same name and version replaces one), and check the
        routes and every action's middleware. Nothing of the project runs yet. Raises
        :class:`~hero_fast.project.ProjectError` with one line naming the file."""
        if self._loaded:
            return
        root = self.project_dir
        for folder in self._paths("initializer"):
            if folder.is_dir():
                load_initializers(folder, self.initializers, root)
        for folder in self._paths("middleware"):
            if folder.is_dir():
                for file, mw in find_middleware(folder, root):
                    self._add_middleware(mw, where(file, root))
        self.actions.load_builtins()
        for folder in self._paths("action"):
            if folder.is_dir():
                self.actions.load_folder(folder, root)
        for source, action, names in self.actions.unresolved_middleware():
            known = ", ".join(sorted(self.actions.middleware)) or "none"
            raise ProjectError(
                f"{source}: action {action!r} uses action middleware {', '.join(map(repr, names))}, which "
                f"is not defined (defined: {known}; put it in {self.config['general']['paths']['middleware'][0]}/)"
            )
        for route in self.routes.routes:
            if self.actions.get(route.action) is None:
                raise ProjectError(
                    f"{self.config_sources.get('routes', 'config')}: route {route.method.upper()} {route.path} "
                    f"names action {route.action!r}, which does not exist"
                )
        self._loaded = True

    def _add_middleware(self, mw: Any, source: str) -> None:
        try:
            if isinstance(mw, ActionMiddleware):
                self.actions.add_middleware(mw)
            elif isinstance(mw, ConnectionMiddleware):
                self.connections.add_middleware(mw)
            elif isinstance(mw, ChatMiddleware):
                self.chat_room.add_middleware(mw)
            else:
                raise TypeError(f"{type(mw).__name__} is not action, connection or chat middleware")
        except (TypeError, ValueError) as exc:
            raise ProjectError(f"{source}: {exc}") from exc

    # -- boot --------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        web = self.config["servers"]["web"]
        if not web.get("certfile"):
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(web["certfile"], web.get("keyfile"))
        except (OSError, ssl.SSLError) as exc:
            # name the option and the file, not just "[Errno 2] No such file or directory"
            option = "servers.web.certfile"
            path = web["certfile"]
            keyfile = web.get("keyfile")
            if isinstance(exc, FileNotFoundError) and keyfile and not os.path.exists(keyfile):
                option, path = "servers.web.keyfile", keyfile
            source = self.config_sources.get(option)
            origin = f" (from {source})" if source else ""
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"{option} {path}: {reason}{origin}") from exc
        return context

    async def start(
        self, host: str | None = None, port: int | None = None, *, reuse_port: bool = False, listen: bool = True
    ) -> None:
        """Boot and listen (``port=0`` picks a free port; see ``api.port``). With
        ``listen=False`` everything but the listening socket is up (``hero_fast.testing``);
        :meth:`listen` opens it later."""
        self.loop = asyncio.get_running_loop()
        self.load()
        tls = self._ssl_context() if listen else None  # a bad TLS option fails here, before any initializer
        install_access_log(self)  # logging.accessLog, when its logger writes info lines
        await self.initializers.initialize(self)
        cluster_started = False
        try:
            write_client(self)  # public/<clientJsPath>/<clientJsName>.js, .min.js, .d.ts: every boot
            await self.cluster.start()
            cluster_started = True
            for room, options in self.config["general"]["startingChatRooms"].items():
                if not self.chat_room.exists(room):
                    self._add_starting_room(room, options)
            await self.initializers.start(self)
            if listen:
                await self.listen(host, port, reuse_port=reuse_port, tls=tls)
        except BaseException:
            await self.initializers.stop(self)
            if cluster_started:
                await self.cluster.stop()
            raise
        self._running = True
        self.started_at = time.time()

    def _add_starting_room(self, room: str, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - {"history"})
        if unknown:
            raise ConfigError(
                f"general.startingChatRooms: room {room!r}: unknown option(s) {', '.join(unknown)}; allowed: history"
            )
        try:
            self.chat_room.add(room, options.get("history"))
        except ChatError as exc:
            raise ConfigError(f"general.startingChatRooms: {exc}") from None

    async def listen(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        reuse_port: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Open the listening socket and start the heartbeat (part of :meth:`start`);
        ``tls`` is the context :meth:`start` made from ``servers.web.certfile``."""
        web = self.config["servers"]["web"]
        self.server = await serve(
            _EngineHandler(self.websocket, self.web),
            host if host is not None else web["host"],
            port if port is not None else web["port"],
            options=engine_options(self.config),
            ssl=tls if tls is not None else self._ssl_context(),
            reuse_port=reuse_port,
        )
        self.websocket.start_heartbeat()
        log.info("hero-fast listening on %s:%s", host or web["host"], self.port)

    @property
    def port(self) -> int:
        if self.server is None:
            raise RuntimeError("the server is not listening")
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

    # -- stop ----------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop accepting, finish in-flight work (bounded), close every client, stop the
        initializers and the cluster backend. Logged step by step."""
        if not self._running:
            return
        self._running = False
        loop = asyncio.get_running_loop()
        began = loop.time()
        server, self.server = self.server, None
        if server is not None:
            server.close()
        timeout = self.config["general"]["shutdownTimeout"]
        in_flight = self.actions.in_flight
        log.info(
            "shutdown: no longer accepting; waiting up to %gs for %d action(s) in flight, then closing "
            "%d connection(s)",
            timeout,
            in_flight,
            len(self.connections),
        )
        self.actions.refusing = True  # new requests get a 503 error reply
        if not await self.actions.drain(timeout):
            cut = await self.actions.cut()
            log.warning(
                "shutdown: %d action(s) still running after %gs were cut; their callers got an error reply",
                cut,
                timeout,
            )
        if self._tasks:  # replies and middleware of the actions just finished
            _, pending = await asyncio.wait(set(self._tasks), timeout=1.0)
            for task in pending:
                task.cancel()
        self.websocket.stop_heartbeat()
        self.websocket.close_all(self.config["servers"]["websocket"]["destroyClientsOnShutdown"])
        if server is not None:
            await server.shutdown(timeout=server.options.close_timeout)
        for conn in list(self.connections.by_id.values()):
            self.connections.destroy(conn)
        await self.initializers.stop(self)
        await self.cluster.stop()  # sweeps this node's members, then deregisters it
        log.info("shutdown: complete in %.1fs", loop.time() - began)

    # -- blocking entry point ---------------------------------------------------------

    def run(self, host: str | None = None, port: int | None = None, *, reuse_port: bool = False) -> None:
        """Serve until SIGINT or SIGTERM, then stop gracefully; a second signal during the
        stop exits at once (status 1)."""
        try:
            import uvloop
        except ImportError:  # Windows: plain asyncio
            asyncio.run(self._serve_forever(host, port, reuse_port))
        else:
            uvloop.run(self._serve_forever(host, port, reuse_port))

    async def _serve_forever(self, host: str | None, port: int | None, reuse_port: bool = False) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if not stop.is_set():
                log.info("shutdown: %s received", signal.Signals(signum).name)
                stop.set()
                return
            log.warning("shutdown: second %s received: exiting now", signal.Signals(signum).name)
            _exit_now(1)

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal, sig)
            except NotImplementedError:  # pragma: no cover - Windows
                pass
        await self.start(host, port, reuse_port=reuse_port)
        web = self.config["servers"]["web"]
        scheme = "https" if web.get("certfile") else "http"
        print(f"hero-fast serving {self.project_dir} on {scheme}://{host or web['host']}:{self.port}/", flush=True)
        notify_ready()  # tells a --workers supervisor this process listens (no-op otherwise)
        await stop.wait()
        await self.stop()


def _exit_now(status: int) -> None:
    """Leave the process at once (a forced stop), after flushing what was logged."""
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:  # nothing more can be done on the way out
            pass
    sys.stdout.flush()
    os._exit(status)
