"""engine_options() and the generated reference (python -m hero_fast.config)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from hero_fast._transport import Options
from hero_fast.config import DEFAULTS, SPEC, ConfigError, Option, engine_options, flatten, load_config
from hero_fast.config.docs import markdown, options


def test_engine_options_from_defaults():
    config, _ = load_config(None, environ={})
    opts = engine_options(config)
    assert isinstance(opts, Options)
    assert opts.as_dict() | {"ping_timeout": None, "tick": None} == {
        "max_message_size": 1048576,
        "max_fragments": 1024,
        "handshake_timeout": 10.0,
        "close_timeout": 5.0,
        "max_request_line": 8192,
        "max_headers": 100,
        "max_header_bytes": 16384,
        "max_body_size": 1048576,
        "keepalive_timeout": 15.0,
        "write_buffer_high": 262144,
        "write_buffer_low": 65536,
        "max_send_buffer": 1048576,
        "slow_consumer": "drop",
        "ping_interval": 0.0,  # the primus heartbeat replaces WebSocket pings
        "ping_timeout": None,
        "tick": None,
        "deflate": True,
        "deflate_server_no_context_takeover": True,
        "deflate_client_no_context_takeover": True,
        "deflate_server_max_window_bits": 15,
        "deflate_client_max_window_bits": 12,
        "deflate_level": 6,
        "deflate_mem_level": 8,
        "deflate_min_size": 128,
        "max_connections": 10000,
        "max_connections_per_ip": 0,
        "max_messages_per_second": 500.0,
        "max_pings_per_second": 10.0,
        "coalesce_pongs": True,
        "frame_timeout": 30.0,
        "rate_limit_policy": "throttle",
        "trusted_proxies": (),
    }


def test_engine_options_follow_the_config():
    ws = "servers.websocket"
    config, _ = load_config(
        None,
        environ={},
        overrides={
            f"{ws}.maxMessageSize": 1000,
            f"{ws}.maxFragments": 3,
            f"{ws}.handshakeTimeout": 1.5,
            f"{ws}.closeTimeout": 2,
            f"{ws}.maxRequestLine": 100,
            f"{ws}.maxHeaders": 10,
            f"{ws}.maxHeaderBytes": 2000,
            f"{ws}.writeBufferHigh": 4096,
            f"{ws}.writeBufferLow": 1024,
            "servers.web.maxBodySize": 5000,
            "servers.web.keepAliveTimeout": 0.25,
            f"{ws}.server.pingInterval": 1000,
            f"{ws}.rateLimitPolicy": "close",
            "servers.web.trustedProxies": ["10.0.0.0/8", "::1"],
        },
    )
    o = engine_options(config)
    assert (o.rate_limit_policy, o.trusted_proxies) == ("close", ("10.0.0.0/8", "::1"))
    assert (o.max_message_size, o.max_fragments, o.handshake_timeout, o.close_timeout) == (1000, 3, 1.5, 2.0)
    assert (o.max_request_line, o.max_headers, o.max_header_bytes) == (100, 10, 2000)
    assert (o.write_buffer_high, o.write_buffer_low) == (4096, 1024)
    assert (o.max_body_size, o.keepalive_timeout, o.ping_interval) == (5000, 0.25, 0.0)


def test_every_option_has_a_description_and_a_default_that_passes_its_check():
    leaves = options()
    assert {dotted for _, dotted, _ in leaves} == set(flatten(DEFAULTS))
    for _, dotted, opt in leaves:
        assert isinstance(opt, Option)
        assert len(opt.doc) > 15, dotted
        assert opt.check(opt.default) is None, dotted


def test_markdown_covers_every_key():
    text = markdown()
    for key, value in flatten(DEFAULTS).items():
        row = re.search(rf"^\| `{re.escape(key)}` \| (.+?) \| (.+?) \| (.+) \|$", text, re.MULTILINE)
        assert row, f"{key} missing from the reference"
        assert repr(value) in row.group(1).replace("\\|", "|")
    # sections and the way values are resolved are explained
    for needle in (
        "## `servers.websocket.server`",
        "HERO_FAST_PORT",
        "HERO_FAST__servers__web__port",
        "HERO_FAST_ENV",
        "production = {...}",
    ):
        assert needle in text


def test_markdown_table_rows_have_four_cells():
    for line in markdown().splitlines():
        if line.startswith("| `") and "." in line.split("|")[1]:
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            assert len(cells) == 4, line


def test_spec_sections_are_dicts_and_leaves_are_options():
    def walk(node, path):
        for key, sub in node.items():
            assert isinstance(sub, (dict, Option)), ".".join((*path, key))
            if isinstance(sub, dict):
                assert sub, "empty section " + ".".join((*path, key))
                walk(sub, (*path, key))

    walk(SPEC, ())


def run_module(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "hero_fast.config", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_python_m_hero_fast_config_markdown():
    result = run_module("--markdown")
    assert result.returncode == 0, result.stderr
    assert result.stdout == markdown()


def test_python_m_hero_fast_config_json():
    result = run_module("--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(json.dumps(DEFAULTS))


def test_python_m_hero_fast_config_show(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "web.py").write_text('DEFAULT = {"servers": {"web": {"port": 9999}}}')
    result = run_module("--show", "--project", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "servers.web.port = 9999  # config/web.py" in result.stdout
    assert 'servers.web.host = "127.0.0.1"  # default' in result.stdout


@pytest.mark.parametrize("bad", [["10.0.0.0/33"], ["proxy.example"], "10.0.0.1", [1]])
def test_trusted_proxies_must_be_addresses_or_networks(bad):
    with pytest.raises(ConfigError, match="trustedProxies"):
        load_config(None, environ={}, overrides={"servers.web.trustedProxies": bad})
