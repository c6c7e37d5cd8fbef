"""/metrics: off by default, Prometheus text when enabled, values that move."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from _ops_support import Ws, eventually, http, make_project, running
from _redis_server import private_redis_server

from hero_fast.app import Api
from hero_fast.config import ConfigError

prometheus_client = pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

ON = {"metrics.enabled": True}


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(body: bytes, name: str, **labels: str) -> float:
    return samples(body).get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(api: Api) -> bytes:
    status, _, body = await http(api, "/metrics")
    assert status == 200, body
    return body


async def test_metrics_are_off_by_default(tmp_path: Path) -> None:
    async with running(tmp_path) as api:
        assert api.metrics is None
        status, _, _ = await http(api, "/metrics")
        assert status == 404


async def test_metrics_endpoint_serves_prometheus_text(tmp_path: Path) -> None:
    async with running(tmp_path, ON) as api:
        status, headers, body = await http(api, "/metrics")
        assert status == 200
        assert headers["content-type"].startswith("text/plain")
        assert headers["cache-control"] == "no-store"
        names = {family.name for family in text_string_to_metric_families(body.decode())}
        for name in [
            "hero_fast_info",
            "hero_fast_connections",
            "hero_fast_connections_opened",
            "hero_fast_engine_connections",
            "hero_fast_websocket_messages_received",
            "hero_fast_websocket_received_bytes",
            "hero_fast_websocket_messages_sent",
            "hero_fast_websocket_close_codes",
            "hero_fast_messages_dropped",
            "hero_fast_engine_events",
            "hero_fast_action_duration_seconds",
            "hero_fast_actions",
            "hero_fast_chat_rooms",
            "hero_fast_chat_members",
            "hero_fast_chat_room_members",
            "hero_fast_cluster_backend_info",
            "hero_fast_cluster_connected",
            "hero_fast_recovery",
            "process_resident_memory_bytes",
        ]:
            assert name in names, name
        assert value(body, "hero_fast_chat_rooms") == 2.0  # defaultRoom, anotherRoom
        assert value(body, "hero_fast_cluster_backend_info", backend="memory") == 1.0
        assert value(body, "hero_fast_engine_events_total", event="protocol_errors") == 0.0
        assert ("hero_fast_messages_dropped_total", (("reason", "slow_consumer"),)) in samples(body)
        assert value(body, "hero_fast_recovery_total", event="saved") == 0.0


async def test_engine_counters_are_read_at_scrape_time(tmp_path: Path) -> None:
    async with running(tmp_path, ON) as api:
        assert api.server is not None
        counters = api.server.counters
        counters["protocol_errors"] = counters.get("protocol_errors", 0) + 2
        counters["messages_dropped"] = counters.get("messages_dropped", 0) + 3
        counters["bytes_dropped"] = counters.get("bytes_dropped", 0) + 300
        counters["dropped_testing"] = 4  # a drop reason the engine may add later
        body = await scrape(api)
        assert value(body, "hero_fast_engine_events_total", event="protocol_errors") == 2.0
        assert value(body, "hero_fast_messages_dropped_total", reason="slow_consumer") == 3.0
        assert value(body, "hero_fast_messages_dropped_total", reason="testing") == 4.0
        assert value(body, "hero_fast_dropped_bytes_total") == 300.0
        events = {k[1][0][1] for k in samples(body) if k[0] == "hero_fast_engine_events_total"}
        assert not events & {"messages_dropped", "bytes_dropped", "dropped_testing"}


async def test_metric_values_move_after_a_websocket_connection_and_actions(tmp_path: Path) -> None:
    async with running(tmp_path, ON) as api:
        before = await scrape(api)
        assert value(before, "hero_fast_connections", type="webSocket") == 0.0
        async with Ws.connect(api) as ws:
            assert (await ws.action("login", user="ann", password="pw"))["user"] == "ann"
            assert (await ws.action("slow", ms=10))["slept"] == 10  # finishes in a Task
            assert "error" in await ws.action("boom")
            assert "error" in await ws.action("no-such-action")
            assert (await ws.request("roomAdd", room="defaultRoom"))["status"] == "OK"
            assert (await ws.request("say", room="defaultRoom", message="hi"))["status"] == "OK"
            during = await scrape(api)
        assert value(during, "hero_fast_connections", type="webSocket") == 1.0
        assert value(during, "hero_fast_connections_opened_total", type="webSocket") == 1.0
        assert value(during, "hero_fast_chat_members") == 1.0
        assert value(during, "hero_fast_chat_room_members", room="defaultRoom") == 1.0
        assert value(during, "hero_fast_websocket_messages_received_total") == 6.0
        assert value(during, "hero_fast_websocket_received_bytes_total") > 6 * 20
        # welcome + 6 responses + the chat message (which may still be in flight: >= 7)
        assert value(during, "hero_fast_websocket_messages_sent_total") >= 7.0
        for action, outcome in [
            ("login", "ok"),
            ("slow", "ok"),
            ("boom", "server_error"),
            ("_unknown", "client_error"),
        ]:
            assert value(during, "hero_fast_actions_total", action=action, outcome=outcome) == 1.0, action
            assert value(during, "hero_fast_action_duration_seconds_count", action=action) == 1.0
        assert value(during, "hero_fast_action_duration_seconds_sum", action="slow") >= 0.009
        assert value(during, "hero_fast_action_duration_seconds_bucket", action="slow", le="0.005") == 0.0
        assert value(during, "hero_fast_action_duration_seconds_bucket", action="slow", le="+Inf") == 1.0
        # a client-chosen action name never becomes a label
        assert "no-such-action" not in during.decode()

        async def closed() -> bool:
            body = await scrape(api)
            return value(body, "hero_fast_websocket_close_codes_total", code="1000") == 1.0

        await eventually(closed)
        after = await scrape(api)
        assert value(after, "hero_fast_connections", type="webSocket") == 0.0
        assert value(after, "hero_fast_chat_members") == 0.0
        assert value(after, "hero_fast_websocket_messages_sent_total") >= 8.0


async def test_http_actions_are_measured_too(tmp_path: Path) -> None:
    async with running(tmp_path, ON) as api:
        status, _, _ = await http(api, "/api/login?user=bob&password=x")
        assert status == 200
        body = await scrape(api)
        assert value(body, "hero_fast_actions_total", action="login", outcome="ok") == 1.0
        assert value(body, "hero_fast_connections_opened_total", type="web") == 1.0
        assert value(body, "hero_fast_connections", type="web") == 0.0


async def test_openmetrics_head_and_methods(tmp_path: Path) -> None:
    async with running(tmp_path, {**ON, "metrics.path": "/internal/metrics"}) as api:
        assert (await http(api, "/metrics"))[0] == 404
        status, headers, body = await http(
            api, "/internal/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert status == 200
        assert headers["content-type"].startswith("application/openmetrics-text")
        assert body.rstrip().endswith(b"# EOF")
        status, headers, body = await http(api, "/internal/metrics", method="HEAD")
        assert status == 200 and body == b""
        status, headers, _ = await http(api, "/internal/metrics", method="POST")
        assert status == 405 and headers["allow"] == "GET, HEAD"


async def test_room_labels_are_bounded(tmp_path: Path) -> None:
    async with running(tmp_path, {**ON, "metrics.roomLabelLimit": 1}) as api:
        body = await scrape(api)
        assert value(body, "hero_fast_chat_rooms") == 2.0
        assert not [k for k in samples(body) if k[0] == "hero_fast_chat_room_members"]


async def test_two_apis_in_one_process_have_separate_registries(tmp_path: Path) -> None:
    async with running(tmp_path / "a", ON) as a, running(tmp_path / "b", ON) as b:
        assert a.metrics is not None and b.metrics is not None
        assert a.metrics.registry is not b.metrics.registry
        async with Ws.connect(a):
            body_a, body_b = await asyncio.gather(scrape(a), scrape(b))
            assert value(body_a, "hero_fast_connections", type="webSocket") == 1.0
            assert value(body_b, "hero_fast_connections", type="webSocket") == 0.0


def test_enabled_without_prometheus_client_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(sys.modules):
        if name == "prometheus_client" or name.startswith("prometheus_client."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails
    with pytest.raises(ConfigError, match=r"prometheus_client is not installed.*hero-fast\[metrics\]"):
        Api(make_project(tmp_path), overrides=ON)
    Api(tmp_path)  # metrics off: no import, no error


def test_cluster_families_follow_the_backend() -> None:
    from prometheus_client.core import Metric

    from hero_fast.metrics import _cluster_families

    class RedisBackend:  # duck-typed like hero_fast.cluster.redis_backend.RedisBackend
        distributed = True
        connected = False
        counters = {"outages": 2, "reconnects": 1, "note": "not a number"}

    class Holder:
        cluster = RedisBackend()

    families: dict[str, Metric] = {f.name: f for f in _cluster_families(Holder())}
    assert [s.labels for s in families["hero_fast_cluster_backend_info"].samples] == [{"backend": "redis"}]
    assert families["hero_fast_cluster_connected"].samples[0].value == 0.0
    events = {s.labels["event"]: s.value for s in families["hero_fast_cluster_events"].samples}
    assert events == {"outages": 2.0, "reconnects": 1.0}


async def test_cluster_metrics_with_a_live_redis_backend(tmp_path: Path) -> None:
    pytest.importorskip("hiredis", reason="the cluster extra is not installed")
    with private_redis_server(tmp_path) as url:  # not the shared Redis: nothing is left behind
        async with running(tmp_path / "app", {**ON, "redis_url": url}) as api:
            body = await scrape(api)
            assert value(body, "hero_fast_cluster_backend_info", backend="redis") == 1.0
            assert value(body, "hero_fast_cluster_connected") == 1.0
            assert value(body, "hero_fast_cluster_events_total", event="outages") == 0.0
