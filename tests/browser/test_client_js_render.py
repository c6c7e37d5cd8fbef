"""Rendering and writing the browser client (no browser needed)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _browser_support import BASE_OVERRIDES, make_project, merge

from hero_fast.app import Api
from hero_fast.client_js import client_options, js_literal, minify, render, url_expression, write_client
from hero_fast.config import load_config


def config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg, _ = load_config(Path("/nonexistent-hero-fast-project"), overrides=overrides or {})
    return cfg


def api(tmp_path: Path, overrides: dict[str, Any] | None = None) -> Api:
    return Api(make_project(tmp_path / "p"), overrides=merge(BASE_OVERRIDES, overrides or {}))


def test_write_client_writes_js_min_and_declarations(tmp_path: Path) -> None:
    a = api(tmp_path)
    paths = write_client(a)
    folder = a.public_dir / "javascript"
    assert paths == [
        folder / "actionheroClient.js",
        folder / "actionheroClient.min.js",
        folder / "actionheroClient.d.ts",
    ]
    js, mini, dts = (p.read_text(encoding="utf-8") for p in paths)
    assert "@@" not in js and "// template:" not in js
    assert js.startswith("/*! hero-fast ") and mini.startswith("/*! hero-fast ")
    assert len(mini) < 0.7 * len(js)  # whitespace and comments gone
    assert '"min": 100' in js and '"pathname": "/primus"' in js and "window.location.origin" in js
    assert "export declare class ActionheroClient" in dts
    assert sorted(os.listdir(folder)) == ["actionheroClient.d.ts", "actionheroClient.js", "actionheroClient.min.js"]
    for p in paths:
        assert p.stat().st_mode & 0o777 == 0o644


def test_rewritten_every_boot_atomically_and_left_alone_when_unchanged(tmp_path: Path) -> None:
    a = api(tmp_path)
    js_file, min_file, _ = write_client(a)
    js_file.write_text("stale")
    os.utime(min_file, (1_000_000, 1_000_000))
    inode = js_file.stat().st_ino
    write_client(a)
    assert js_file.read_text().startswith("/*! hero-fast")
    assert js_file.stat().st_ino != inode  # replaced by a rename, never written in place
    assert min_file.stat().st_mtime == 1_000_000  # same text: untouched, its ETag stays valid
    b = api(tmp_path / "other", {"servers": {"websocket": {"client": {"ping": 1234}}}})
    b.project_dir = a.project_dir
    write_client(b)
    assert '"ping":1234' in min_file.read_text()
    assert [n for n in os.listdir(js_file.parent) if n.startswith(".")] == []


@pytest.mark.parametrize(
    "websocket",
    [{"enabled": False}, {"clientJsName": None}, {"clientJsPath": ""}, {"clientJsPath": None}],
)
def test_nothing_is_written_when_disabled(tmp_path: Path, websocket: dict[str, Any]) -> None:
    a = api(tmp_path)
    a.config["servers"]["websocket"].update(websocket)
    assert write_client(a) == []
    assert not (a.public_dir / "javascript").exists()


def test_custom_path_and_name_and_refused_ones(tmp_path: Path) -> None:
    a = api(tmp_path)
    a.config["servers"]["websocket"].update(clientJsPath="assets/js/", clientJsName="hero")
    assert [p.name for p in write_client(a)] == ["hero.js", "hero.min.js", "hero.d.ts"]
    assert (a.public_dir / "assets" / "js" / "hero.min.js").is_file()
    a.config["servers"]["websocket"].update(clientJsPath="../outside", clientJsName="hero")
    with pytest.raises(ValueError, match="leads outside the public folder"):
        write_client(a)
    a.config["servers"]["websocket"].update(clientJsPath="javascript", clientJsName="../hero")
    with pytest.raises(ValueError, match="plain file name"):
        write_client(a)


def test_client_url_fixed_url_or_expression() -> None:
    assert url_expression("window.location.origin") == "window.location.origin"
    assert url_expression("http://api.example.com:8080") == '"http://api.example.com:8080"'
    assert url_expression("wss://api.example.com/ws") == '"wss://api.example.com/ws"'
    assert url_expression("'https://' + location.hostname + ':8443'") == "'https://' + location.hostname + ':8443'"
    assert url_expression("'</script><script>alert(1)</script>'") == "'<\\/script><script>alert(1)<\\/script>'"
    assert url_expression("'a\u2028b'") == "'a\\u2028b'"
    with pytest.raises(ValueError):
        url_expression("  ")
    js = render(config({"servers": {"websocket": {"clientUrl": "http://h.example:81"}}}))
    assert 'return (\n"http://h.example:81"\n    );' in js


def test_baked_options_are_safe_inside_a_script_element() -> None:
    cfg = config(
        {
            "servers": {
                "websocket": {
                    "client": {
                        "transport": {"x": "</script><!-- \u2028\u2029 & caf\u00e9"},
                        "queueSize": 7,
                        "reconnect": {"max": 30000},
                    }
                }
            }
        }
    )
    options = client_options(cfg)
    assert options["queueSize"] == 7 and options["reconnect"]["max"] == 30000
    literal = js_literal(options)
    for raw in ("</", "<!--", "\u2028", "\u2029", "&", "\u00e9"):
        assert raw not in literal
    assert json.loads(literal) == options
    js = render(cfg)
    assert "</script" not in js.lower() and "\u2028" not in js
    assert json.loads(literal) == json.loads(js.split("var BAKED = ")[1].split(";\n")[0])


def test_defaults_from_the_config() -> None:
    options = client_options(config())
    assert options == {
        "pathname": "/primus",
        "cookieKey": "sessionID",
        "apiPath": "/api",
        "reconnect": {"min": 500, "max": None, "retries": 10, "factor": 2},
        "timeout": 10000,
        "ping": 25000,
        "pong": 10000,
        "strategy": ["online", "timeout", "disconnect"],
        "manual": False,
        "websockets": True,
        "network": True,
        "transport": {},
        "queueSize": None,
    }
    inf = config({"servers": {"websocket": {"client": {"reconnect": {"max": float("inf")}}}}})
    assert client_options(inf)["reconnect"]["max"] is None


def test_minify_keeps_the_banner_and_drops_comments() -> None:
    out = minify("/*! keep me */\n// drop me\nvar a = 1 ;  /* and me */ var b = `x  y`;\n")
    assert out == "/*! keep me */var a=1;var b=`x  y`;\n"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to parse the generated files")
def test_both_files_parse_and_define_the_same_api(tmp_path: Path) -> None:
    paths = write_client(api(tmp_path))[:2]
    script = (
        "const out = {};"
        "for (const f of process.argv.slice(1)) {"
        "  const C = require(f); const c = new C({ url: 'http://x' });"
        "  out[f.endsWith('.min.js') ? 'min' : 'js'] = {"
        "    methods: Object.keys(C.prototype).sort(), url: c.websocketUrl(), options: c.options }; }"
        "console.log(JSON.stringify(out));"
    )
    for p in paths:
        subprocess.run(["node", "--check", str(p)], check=True, timeout=30)
    res = subprocess.run(["node", "-e", script, *map(str, paths)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["js"] == out["min"]
    assert out["js"]["url"] == "ws://x/primus"
    assert {
        "connect",
        "disconnect",
        "action",
        "say",
        "detailsView",
        "roomView",
        "roomAdd",
        "roomLeave",
        "file",
        "on",
        "off",
        "once",
        "emit",
    } <= set(out["js"]["methods"])


async def test_the_web_server_serves_the_generated_files(tmp_path: Path) -> None:
    a = api(tmp_path)
    write_client(a)
    await a.start(host="127.0.0.1", port=0)
    try:

        def get(path: str) -> tuple[int, str, bytes]:
            with urllib.request.urlopen(f"http://127.0.0.1:{a.port}{path}", timeout=5) as r:
                return r.status, r.headers["Content-Type"], r.read()

        for name in ("actionheroClient.js", "actionheroClient.min.js"):
            status, ctype, body = await asyncio.to_thread(get, f"/javascript/{name}")
            assert status == 200 and ctype == "text/javascript; charset=utf-8"
            assert body == (a.public_dir / "javascript" / name).read_bytes()
        status, _, body = await asyncio.to_thread(get, "/public/javascript/actionheroClient.d.ts")
        assert status == 200 and b"ActionheroClient" in body
    finally:
        await asyncio.wait_for(a.stop(), 10)
