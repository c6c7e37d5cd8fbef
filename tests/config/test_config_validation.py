"""Values the option table refuses get a ConfigError naming the key, the value and its source."""

from __future__ import annotations

import pytest

from hero_fast.config import ConfigError, load_config, resolve_callable, validate

WS = "servers.websocket"


def load(**overrides):
    return load_config(None, overrides=overrides, environ={})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (f"{WS}.server.transformer", "engine.io", r"must be 'websockets'.*own WebSocket engine"),
        (f"{WS}.server.transformer", "faye", r"transformer"),
        (f"{WS}.server.parser", "binary", r"must be 'JSON'"),
        (f"{WS}.server.plugin", {"rooms": "primus-rooms"}, r"must be empty.*Node.js"),
        (f"{WS}.server.methods", "GET", r"methods must be a list of strings"),
        (f"{WS}.server.methods", ["GET", 1], r"methods must be a list of strings"),
        (f"{WS}.server.origins", 5, r"origins must be"),
        (f"{WS}.server.origins", ["https://a", None], r"origins must be"),
        (f"{WS}.server.credentials", "yes", r"credentials must be true or false"),
        (f"{WS}.server.maxAge", [30], r"maxAge must be"),
        (f"{WS}.server.maxAge", True, r"maxAge must be"),
        (f"{WS}.server.headers", True, r"headers must be"),
        (f"{WS}.server.headers", 3, r"headers must be"),
        (f"{WS}.server.exposed", {"X": 1}, r"exposed must be"),
        (f"{WS}.server.pathname", "primus", r'pathname must be a string starting with "/"'),
        (f"{WS}.server.authorization", "not a reference", r"authorization must be"),
        (f"{WS}.server.authorization", 42, r"authorization must be"),
        (f"{WS}.server.pingInterval", -1, r"pingInterval must be an integer >= 0"),
        ("servers.web.port", 65536, r"port must be an integer from 0 to 65535"),
        ("servers.web.port", -1, r"port must be an integer from 0 to 65535"),
        ("servers.web.port", "8080", r"port must be an integer"),
        ("servers.web.port", True, r"port must be an integer"),
        ("servers.web.port", 80.5, r"port must be an integer"),
        ("servers.web.host", "", r"host must be a non-empty string"),
        ("servers.web.rootEndpointType", "index", r"rootEndpointType must be one of 'file', 'api'"),
        ("servers.web.fingerprint.sameSite", "lax", r"sameSite must be"),
        ("servers.web.httpHeaders", {"X": 1}, r"httpHeaders must be a dict of string to a string"),
        ("servers.web.maxBodySize", 0, r"maxBodySize must be an integer >= 1"),
        ("servers.web.keepAliveTimeout", "15", r"keepAliveTimeout must be a number"),
        ("general.simultaneousActions", 0, r"simultaneousActions must be an integer >= 1"),
        ("general.startingChatRooms", ["defaultRoom"], r"startingChatRooms must be a dict of room name"),
        ("general.paths.action", "actions", r"paths.action must be a list of strings"),
        ("general.developmentMode", 1, r"developmentMode must be true or false"),
        ("redis_url", "", r"redis_url must be None or a non-empty string"),
        (f"{WS}.client.reconnect.max", "inf", r"reconnect.max must be None or a number"),
        (f"{WS}.client.queueSize", -5, r"queueSize must be None or an integer >= 0"),
        (f"{WS}.client.strategy", "online", r"strategy must be False or a list of strings"),
        (f"{WS}.maxMessageSize", 0, r"maxMessageSize must be an integer >= 1"),
    ],
)
def test_refused_values(key, value, message):
    with pytest.raises(ConfigError, match=message) as info:
        load(**{key: value})
    text = str(info.value)
    assert key in text
    assert "(from overrides)" in text or "(from cli --" in text


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (f"{WS}.server.origins", "https://a.example, https://b.example"),
        (f"{WS}.server.origins", ["https://a.example"]),
        (f"{WS}.server.maxAge", 3600),
        (f"{WS}.server.headers", ["X-Token"]),
        (f"{WS}.server.headers", "X-Token, X-Other"),
        (f"{WS}.server.exposed", ["X-Token"]),
        (f"{WS}.server.credentials", False),
        (f"{WS}.server.authorization", "myapp.auth:check"),
        (f"{WS}.server.authorization", lambda request: True),
        (f"{WS}.server.pathname", "/ws/"),
        (f"{WS}.client.reconnect.max", 30000),
        (f"{WS}.client.strategy", False),
        ("servers.web.port", 0),
        ("servers.web.port", 65535),
        ("servers.web.keepAliveTimeout", 0.5),
        ("servers.web.fingerprint.sameSite", None),
        ("servers.web.fingerprint.sameSite", "None"),
        ("servers.web.rootEndpointType", "api"),
        ("redis_url", "redis://127.0.0.1:6379/0"),
    ],
)
def test_accepted_values(key, value):
    config, _ = load(**{key: value})
    node = config
    for part in key.split("."):
        node = node[part]
    assert node == value or node is value


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load(**{"servers.web.port": 99999, f"{WS}.server.parser": "msgpack", f"{WS}.server.pathname": "x"})
    text = str(info.value)
    assert text.startswith("invalid configuration:")
    assert "servers.web.port" in text and "server.parser" in text and "server.pathname" in text


def test_source_file_is_named_in_the_error(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "ws.py").write_text(
        'production = {"servers": {"websocket": {"server": {"transformer": "sockjs"}}}}'
    )
    load_config(tmp_path, environ={})  # not selected: fine
    with pytest.raises(ConfigError, match=r"transformer.*'sockjs'.*\(from config/ws.py \[production\]\)"):
        load_config(tmp_path, env="production", environ={})


def test_cross_field_rules():
    with pytest.raises(ConfigError, match=r"keyfile is set but servers\.web\.certfile is not"):
        load(**{"servers.web.keyfile": "key.pem"})
    load(**{"servers.web.certfile": "both.pem"})  # a certfile that holds the key
    with pytest.raises(ConfigError, match="writeBufferLow must not exceed"):
        load(**{f"{WS}.writeBufferLow": 1000, f"{WS}.writeBufferHigh": 10})
    with pytest.raises(ConfigError, match="urlPathForActions"):
        load(**{"servers.web.urlPathForActions": "public"})


def test_validate_reports_a_missing_key():
    config, _ = load()
    del config["servers"]["web"]["port"]
    with pytest.raises(ConfigError, match=r"servers\.web\.port is missing"):
        validate(config)


def test_resolve_callable():
    assert resolve_callable(None) is None
    fn = lambda request: True  # noqa: E731
    assert resolve_callable(fn) is fn
    import os.path

    assert resolve_callable("os.path:join") is os.path.join
    with pytest.raises(ConfigError, match="cannot be imported"):
        resolve_callable("no_such_module_xyz:fn")
    with pytest.raises(ConfigError, match="cannot be imported"):
        resolve_callable("os.path:no_such_fn")
    with pytest.raises(ConfigError, match="not callable"):
        resolve_callable("os:sep")
