"""Prometheus metrics at ``/metrics`` (config ``metrics.enabled``, off by default).

Needs the optional dependency ``prometheus_client`` (``pip install 'hero-fast[metrics]'``);
with ``metrics.enabled`` and the package missing, creating the Api fails with a
`hero_fast.config.ConfigError` that says so.

Each :class:`hero_fast.app.Api` gets its own ``CollectorRegistry`` (never the global
default one), so several Api objects in one process do not collide. The hot path stays
cheap: gauges are computed when Prometheus scrapes (from the connection registry, the
rooms, the engine's counters, the chat layer's delivery counts); what has to be counted as
it happens goes through the server's observation points — connection middleware and an
action observer, registered only when metrics are enabled; the action latency histogram is a
small array of bucket counts per action, turned into a histogram at scrape time.

Metric families (all prefixed ``hero_fast_``): ``info``, ``start_time_seconds``,
``connections{type}``, ``connections_opened_total{type}``, ``engine_connections``,
``websocket_messages_received_total``, ``websocket_received_bytes_total``,
``websocket_messages_sent_total``, ``websocket_sent_bytes_total`` (when the engine counts
it), ``websocket_close_codes_total{code}``, ``messages_dropped_total{reason}``,
``dropped_bytes_total``,
``engine_events_total{event}``, ``action_duration_seconds{action}``,
``actions_total{action,outcome}``, ``actions_in_flight``, ``chat_rooms``,
``chat_members``, ``chat_room_members{room}``, ``cluster_backend_info{backend}``,
``cluster_connected``, ``cluster_events_total{event}``, ``recovery_total{event}``; plus the
standard ``process_*``.
What each one counts: docs/operations.md.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from hero_fast.config import ConfigError
from hero_fast.logs import OUTCOMES, action_label, outcome_index
from hero_fast.middleware import ConnectionMiddleware

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from hero_fast._transport import HttpRequest, Response
    from hero_fast.actions import ActionResult
    from hero_fast.connections import Connection

__all__ = ["LATENCY_BUCKETS", "Metrics", "setup_metrics"]

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Upper bounds (seconds) of the action latency histogram's buckets."""

MISSING_PACKAGE = (
    "metrics.enabled is true but prometheus_client is not installed: "
    "pip install 'hero-fast[metrics]' (or set metrics.enabled to false)"
)


class _Counts:
    """Everything counted as it happens (plain ints: one increment each)."""

    __slots__ = ("close_codes", "closed", "opened", "sent_by_closed")

    def __init__(self) -> None:
        self.sent_by_closed = 0
        self.opened: dict[str, int] = {}
        self.closed: dict[str, int] = {}
        self.close_codes: dict[int, int] = {}


class _Latency:
    """Per action one row: the count of each bucket (the last one is +Inf), then the sum of
    seconds, then the count of each outcome (`OUTCOMES`). One dict lookup per action."""

    __slots__ = ("bounds", "rows")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.rows: dict[str, list[float]] = {}

    def observe(self, name: str, seconds: float, outcome_index: int) -> None:
        row = self.rows.get(name)
        if row is None:
            row = self.rows[name] = [0] * (len(self.bounds) + 2 + len(OUTCOMES))
        row[bisect_left(self.bounds, seconds)] += 1
        n = len(self.bounds) + 1
        row[n] += seconds
        row[n + 1 + outcome_index] += 1

    def buckets(self, name: str) -> list[tuple[str, float]]:
        out = []
        total = 0.0
        for bound, n in zip((*self.bounds, float("inf")), self.rows[name], strict=False):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return out

    def total_seconds(self, name: str) -> float:
        return self.rows[name][len(self.bounds) + 1]

    def outcomes(self, name: str) -> list[tuple[str, float]]:
        base = len(self.bounds) + 2
        return [(o, self.rows[name][base + i]) for i, o in enumerate(OUTCOMES) if self.rows[name][base + i]]


class Metrics:
    """The metrics of one Api: its registry, the counting hooks and the endpoint."""

    def __init__(self, api: Any) -> None:
        try:
            from prometheus_client import CollectorRegistry, ProcessCollector
        except ImportError as exc:
            raise ConfigError(MISSING_PACKAGE) from exc
        self.api = api
        cfg = api.config.get("metrics") or {}
        self.path: str = cfg.get("path", "/metrics")
        self.room_label_limit: int = int(cfg.get("roomLabelLimit", 100))
        self.started_at = time.time()
        self.counts = _Counts()
        self.latency = _Latency(LATENCY_BUCKETS)
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(self))
        ProcessCollector(registry=self.registry)

    # -- observation points (registered by setup_metrics) ------------------------

    def install(self) -> None:
        self.api.connections.add_middleware(
            ConnectionMiddleware("hero_fast.metrics", priority=-1000, create=self._opened, destroy=self._closed)
        )
        self.api.actions.add_observer(self._action)

    def _opened(self, conn: Connection) -> None:
        opened = self.counts.opened
        opened[conn.type] = opened.get(conn.type, 0) + 1

    def _closed(self, conn: Connection) -> None:
        counts = self.counts
        counts.closed[conn.type] = counts.closed.get(conn.type, 0) + 1
        counts.sent_by_closed += conn.message_count
        code = conn.close_code
        if code is not None:
            counts.close_codes[code] = counts.close_codes.get(code, 0) + 1

    def _action(self, conn: Any, result: ActionResult) -> None:
        self.latency.observe(action_label(self.api, result), result.duration / 1000.0, outcome_index(result))

    # -- the endpoint --------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition (body, content type); OpenMetrics when ``accept`` asks for it."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def handle(self, request: HttpRequest) -> Response:
        """The ``metrics.path`` route of the web server (GET and HEAD)."""
        from hero_fast._transport import Response

        if request.method not in ("GET", "HEAD"):
            return Response(
                405, [("Allow", "GET, HEAD"), ("Content-Type", "text/plain; charset=utf-8")], b"method not allowed\n"
            )
        body, content_type = self.render(request.header("accept"))
        headers = [("Content-Type", content_type), ("Cache-Control", "no-store")]
        return Response(200, headers, b"" if request.method == "HEAD" else body)


#: Engine counters reported as their own families rather than as engine events.
_NOT_EVENTS = frozenset({"messages_in", "messages_out", "bytes_in", "bytes_out", "messages_dropped", "bytes_dropped"})


def _server_counters(api: Any) -> dict[str, int]:
    server = getattr(api, "server", None)
    counters = getattr(server, "counters", None)
    return dict(counters) if isinstance(counters, dict) else {}


class _Collector:
    """Builds every hero_fast_* family at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        from hero_fast import __version__

        m = self.m
        api = m.api
        counts = m.counts

        info = GaugeMetricFamily(
            "hero_fast_info",
            "hero-fast version and the process answering (one per --workers process).",
            labels=["version", "pid"],
        )
        info.add_metric([__version__, str(os.getpid())], 1.0)
        yield info
        yield GaugeMetricFamily(
            "hero_fast_start_time_seconds", "When the Api was created (epoch s).", value=m.started_at
        )

        # connections
        live = GaugeMetricFamily(
            "hero_fast_connections",
            "Connections open now, by type (webSocket; web = HTTP action requests in progress).",
            labels=["type"],
        )
        opened = CounterMetricFamily("hero_fast_connections_opened", "Connections opened, by type.", labels=["type"])
        for kind in sorted(set(counts.opened) | {"webSocket", "web"}):
            n_open = counts.opened.get(kind, 0)
            live.add_metric([kind], float(n_open - counts.closed.get(kind, 0)))
            opened.add_metric([kind], float(n_open))
        yield live
        yield opened
        server = getattr(api, "server", None)
        engine_conns = len(server.connections) if server is not None else 0
        yield GaugeMetricFamily(
            "hero_fast_engine_connections",
            "TCP connections the engine holds (HTTP keep-alive, WebSocket, closing).",
            value=float(engine_conns),
        )

        # messages and bytes
        engine = _server_counters(api)
        sent = counts.sent_by_closed + api.chat_room.delivered
        sent += sum(c.message_count for c in api.connections.by_id.values())
        yield CounterMetricFamily(
            "hero_fast_websocket_messages_received",
            "WebSocket messages received from clients.",
            value=float(engine.get("messages_in", 0)),
        )
        yield CounterMetricFamily(
            "hero_fast_websocket_received_bytes",
            "Payload bytes of the WebSocket messages received.",
            value=float(engine.get("bytes_in", 0)),
        )
        yield CounterMetricFamily(
            "hero_fast_websocket_messages_sent",
            "Application messages handed to the engine for WebSocket clients (responses, pushes, chat "
            "deliveries; not heartbeats); those then dropped for slow consumers are in messages_dropped.",
            value=float(engine.get("messages_out", sent)),
        )
        if "bytes_out" in engine:
            yield CounterMetricFamily(
                "hero_fast_websocket_sent_bytes",
                "Bytes written to WebSocket clients.",
                value=float(engine["bytes_out"]),
            )
        codes = CounterMetricFamily(
            "hero_fast_websocket_close_codes", "WebSocket connections closed, by close code.", labels=["code"]
        )
        for code, n in sorted(counts.close_codes.items()):
            codes.add_metric([str(code)], float(n))
        yield codes
        dropped = CounterMetricFamily(
            "hero_fast_messages_dropped",
            "Messages not delivered, by reason (slow_consumer: the receiver's send buffer was full; "
            "closing: the receiver was closing).",
            labels=["reason"],
        )
        dropped.add_metric(["closing"], float(api.chat_room.undeliverable))
        dropped.add_metric(["slow_consumer"], float(engine.get("messages_dropped", 0)))
        events = CounterMetricFamily(
            "hero_fast_engine_events",
            "Engine events (protocol errors, timeouts, refused connections, ...), from the engine's counters.",
            labels=["event"],
        )
        for key, n in sorted(engine.items()):
            if key.startswith("dropped_"):  # a future drop reason: dropped_<reason>
                dropped.add_metric([key[len("dropped_") :]], float(n))
            elif key not in _NOT_EVENTS:
                events.add_metric([key], float(n))
        yield dropped
        yield CounterMetricFamily(
            "hero_fast_dropped_bytes",
            "Bytes of the messages dropped for slow consumers.",
            value=float(engine.get("bytes_dropped", 0)),
        )
        yield events

        # actions
        latency = m.latency
        hist = HistogramMetricFamily(
            "hero_fast_action_duration_seconds",
            "Time from receiving an action request to its response.",
            labels=["action"],
        )
        for name in sorted(latency.rows):
            hist.add_metric([name], latency.buckets(name), sum_value=latency.total_seconds(name))
        yield hist
        total = CounterMetricFamily(
            "hero_fast_actions",
            "Action requests, by action and outcome (ok, client_error, server_error).",
            labels=["action", "outcome"],
        )
        for name in sorted(latency.rows):
            for result_outcome, count in latency.outcomes(name):
                total.add_metric([name, result_outcome], count)
        yield total
        yield GaugeMetricFamily(
            "hero_fast_actions_in_flight", "Actions waiting on I/O right now.", value=float(api.actions.in_flight)
        )

        # chat
        rooms = api.chat_room.rooms
        yield GaugeMetricFamily("hero_fast_chat_rooms", "Chat rooms.", value=float(len(rooms)))
        sizes = {name: len(r.members) for name, r in rooms.items()}
        yield GaugeMetricFamily(
            "hero_fast_chat_members",
            "Room memberships (a connection counts once per room).",
            value=float(sum(sizes.values())),
        )
        per_room = GaugeMetricFamily(
            "hero_fast_chat_room_members",
            "Members of each room (only while there are at most metrics.roomLabelLimit rooms).",
            labels=["room"],
        )
        if len(sizes) <= m.room_label_limit:
            for name, n in sorted(sizes.items()):
                per_room.add_metric([name], float(n))
        yield per_room

        # connection state recovery
        recovery = CounterMetricFamily(
            "hero_fast_recovery",
            "Connection state recovery: states saved when a connection dropped, and recover requests by "
            "outcome (recovered, partial: something was lost, refused: nothing to recover).",
            labels=["event"],
        )
        for event, n in sorted(api.recovery.counters.items()):
            recovery.add_metric([event], float(n))
        yield recovery

        # cluster backend
        yield from _cluster_families(api)


def _cluster_families(api: Any) -> Iterator[Metric]:
    """The cluster bus from ``api.cluster`` (``hero_fast.cluster``): the backend, whether
    its bus is connected (``connected``, when the backend reports it; the in-process
    backend always is), and its numeric ``counters``."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    cluster = getattr(api, "cluster", None)
    distributed = bool(getattr(cluster, "distributed", False))
    backend = "memory"
    if cluster is not None:
        backend = type(cluster).__name__.removesuffix("Backend").lower() or "unknown"
    info = GaugeMetricFamily("hero_fast_cluster_backend_info", "The cluster backend in use.", labels=["backend"])
    info.add_metric([backend], 1.0)
    yield info
    connected = getattr(cluster, "connected", None) if distributed else True
    if connected is not None:
        yield GaugeMetricFamily(
            "hero_fast_cluster_connected",
            "1 while the cluster bus (Redis) is connected; always 1 in-process.",
            value=1.0 if connected else 0.0,
        )
    counters = getattr(cluster, "counters", None)
    events = CounterMetricFamily(
        "hero_fast_cluster_events",
        "Cluster bus counters (published, received, dropped, reconnects, ...).",
        labels=["event"],
    )
    if isinstance(counters, dict):
        for key, n in sorted(counters.items()):
            if isinstance(n, (int, float)) and not isinstance(n, bool):
                events.add_metric([str(key)], float(n))
    yield events


def setup_metrics(api: Any) -> Metrics | None:
    """Metrics for ``api`` when ``metrics.enabled`` (else None); installs the hooks."""
    cfg = api.config.get("metrics") or {}
    if not cfg.get("enabled", False):
        return None
    metrics = Metrics(api)
    metrics.install()
    return metrics
