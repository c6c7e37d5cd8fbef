"""Static files through a real socket: routes, MIME, validators, 304, traversal."""

from __future__ import annotations

import os
import sys
import time
from email.utils import formatdate
from pathlib import Path

import pytest
from _http_support import Live, RawHttp, start_live, stop_live

from hero_fast.servers import static


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("/", b"<h1>hello</h1>\n"),
        ("/index.html", b"<h1>hello</h1>\n"),
        ("/chat.html", b"<p>chat</p>\n"),
        ("/public/index.html", b"<h1>hello</h1>\n"),
        ("/public/chat.html", b"<p>chat</p>\n"),
        ("/public", b"<h1>hello</h1>\n"),
        ("/public/", b"<h1>hello</h1>\n"),
        ("/public/sub/", b"<p>sub index</p>\n"),
        ("/public/sub", b"<p>sub index</p>\n"),
        ("/sub/", b"<p>sub index</p>\n"),
        ("/sub/page.txt", b"plain text\n"),
        ("/public/css/site.css?v=3", b"body{}\n"),
        ("/public/unicode-%C3%A9.txt", "caf\u00e9\n".encode()),
        ("/public//sub//page.txt", b"plain text\n"),
        ("/public/./sub/./page.txt", b"plain text\n"),
    ],
)
async def test_files(live: Live, target: str, body: bytes) -> None:
    r = await live.get(target)
    assert r.status == 200, (target, r.body)
    assert r.body == body


@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("sub/page.txt", "text/plain; charset=utf-8"),
        ("css/site.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.js.map", "application/json; charset=utf-8"),
        ("data.json", "application/json; charset=utf-8"),
        ("logo.svg", "image/svg+xml; charset=utf-8"),
        ("mod.wasm", "application/wasm"),
        ("font.woff2", "font/woff2"),
        ("pic.png", "image/png"),
        ("blob.unknownext", "application/octet-stream"),
    ],
)
async def test_mime_types(live: Live, name: str, ctype: str) -> None:
    r = await live.get(f"/public/{name}")
    assert r.status == 200
    assert r.header("content-type") == ctype


async def test_binary_file_intact(live: Live) -> None:
    r = await live.get("/public/blob.bin")
    assert r.body == bytes(range(256))
    assert r.header("content-length") == "256"


async def test_validators_and_cache_control(live: Live, public: Path) -> None:
    r = await live.get("/public/chat.html")
    etag = r.header("etag")
    assert etag and etag.startswith('"') and etag.endswith('"')
    mtime = os.stat(public / "chat.html").st_mtime
    assert r.header("last-modified") == formatdate(mtime, usegmt=True)
    assert "max-age=60" in (r.header("cache-control") or "")
    r2 = await live.get("/chat.html")  # same file, other route
    assert r2.header("etag") == etag


@pytest.mark.parametrize("form", ["{etag}", "W/{etag}", '"zzz", {etag}', "*"])
async def test_if_none_match_304(live: Live, form: str) -> None:
    etag = (await live.get("/public/app.js")).header("etag")
    assert etag is not None
    r = await live.get("/public/app.js", headers={"If-None-Match": form.format(etag=etag)})
    assert r.status == 304
    assert r.body == b""
    assert r.header("etag") == etag
    assert r.header("content-length") is None
    assert "max-age=60" in (r.header("cache-control") or "")
    assert r.header("access-control-allow-origin") == "*"


async def test_if_none_match_mismatch_200(live: Live) -> None:
    r = await live.get("/public/app.js", headers={"If-None-Match": '"other"'})
    assert r.status == 200 and r.body == b"console.log(1)\n"


async def test_if_modified_since(live: Live, public: Path) -> None:
    lm = (await live.get("/public/app.js")).header("last-modified")
    assert lm is not None
    assert (await live.get("/public/app.js", headers={"If-Modified-Since": lm})).status == 304
    later = formatdate(time.time() + 3600, usegmt=True)
    assert (await live.get("/public/app.js", headers={"If-Modified-Since": later})).status == 304
    earlier = formatdate(os.stat(public / "app.js").st_mtime - 3600, usegmt=True)
    assert (await live.get("/public/app.js", headers={"If-Modified-Since": earlier})).status == 200
    assert (await live.get("/public/app.js", headers={"If-Modified-Since": "garbage"})).status == 200
    # If-None-Match wins over If-Modified-Since
    r = await live.get("/public/app.js", headers={"If-None-Match": '"x"', "If-Modified-Since": later})
    assert r.status == 200


async def test_changed_file_is_served_fresh(live: Live, public: Path) -> None:
    r1 = await live.get("/public/chat.html")
    path = public / "chat.html"
    path.write_text("<p>chat v2, longer</p>\n")
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    r2 = await live.get("/public/chat.html")
    assert r2.body == b"<p>chat v2, longer</p>\n"
    assert r2.header("etag") != r1.header("etag")
    r3 = await live.get("/public/chat.html", headers={"If-None-Match": r1.header("etag") or ""})
    assert r3.status == 200


async def test_head_static(live: Live) -> None:
    client = await RawHttp.connect(live.port)
    try:
        r = await client.request("HEAD", "/public/index.html")
        assert r.status == 200
        assert r.header("content-length") == "15"
        assert r.header("content-type") == "text/html; charset=utf-8"
        assert r.header("etag")
        # no body bytes were sent: the next response follows immediately
        r2 = await client.request("GET", "/public/chat.html")
        assert r2.status == 200 and r2.body == b"<p>chat</p>\n"
    finally:
        await client.close()


@pytest.mark.parametrize(
    "target",
    [
        "/public/../pyproject.toml",
        "/public/../secret.txt",
        "/../secret.txt",
        "/public/%2e%2e/secret.txt",
        "/public/%2E%2E/pyproject.toml",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/public/..%2fsecret.txt",
        "/public/sub/..%2f..%2fsecret.txt",
        "/public/%2e%2e%2fsecret.txt",
        "/public/sub/../../secret.txt",
        "/public/..%5csecret.txt",
        "/public/index.html%00.txt",
        "/public/%00",
        "/public//etc/passwd",
        "/public/" + "%2Fetc%2Fpasswd",
        "//etc/passwd",
        "/public/.env",
        "/.env",
        "/public/nope.html",
        "/public/empty/",
        "/public/sub/page.txt/",
        "/nope",
    ],
)
async def test_not_found_and_traversal(live: Live, target: str) -> None:
    r = await live.get(target)
    assert r.status == 404, (target, r.body)
    assert r.json() == {"error": "that file is not found"}
    assert b"secret" not in r.body and b"root:" not in r.body


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
async def test_symlinks(live: Live, public: Path) -> None:
    outside = public.parent / "secret.txt"
    (public / "escape.txt").symlink_to(outside)
    (public / "escape_dir").symlink_to(public.parent, target_is_directory=True)
    (public / "alias.html").symlink_to(public / "chat.html")
    assert (await live.get("/public/escape.txt")).status == 404
    assert (await live.get("/public/escape_dir/secret.txt")).status == 404
    assert (await live.get("/public/escape_dir/")).status == 404
    r = await live.get("/public/alias.html")
    assert r.status == 200 and r.body == b"<p>chat</p>\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
async def test_fifo_is_not_served(live: Live, public: Path) -> None:
    os.mkfifo(public / "pipe.txt")
    r = await live.get("/public/pipe.txt")  # must not block the server
    assert r.status == 404


async def test_large_file_read_per_request(live: Live, public: Path) -> None:
    data = os.urandom(static.CACHE_FILE_MAX + 12345)
    (public / "big.bin").write_bytes(data)
    r = await live.get("/public/big.bin")
    assert r.status == 200
    assert r.body == data
    assert r.header("etag")
    assert live.web.files.cached_bytes < static.CACHE_FILE_MAX  # not kept in memory
    r = await live.request("HEAD", "/public/big.bin")
    assert r.status == 200 and r.header("content-length") == str(len(data))
    r = await live.get("/public/big.bin", headers={"If-None-Match": r.header("etag") or ""})
    assert r.status == 304


async def test_a_file_over_the_cache_size_is_streamed_whole(live: Live, public: Path) -> None:
    data = os.urandom(3 * static.STREAM_CHUNK + 123)  # several chunks, not cached
    (public / "huge.bin").write_bytes(data)
    r = await live.get("/public/huge.bin")
    assert r.status == 200
    assert r.header("content-length") == str(len(data))
    assert r.body == data
    # the connection is still usable afterwards (keep-alive)
    assert (await live.get("/public/index.html")).status == 200


async def test_missing_public_dir(tmp_path: Path) -> None:
    srv = await start_live(tmp_path / "does-not-exist")
    try:
        assert (await srv.get("/")).status == 404
        assert (await srv.get("/public/index.html")).status == 404
        assert (await srv.get("/api/echo")).status == 200
    finally:
        await stop_live(srv)


async def test_no_public_dir_at_all() -> None:
    srv = await start_live(None)
    try:
        assert (await srv.get("/")).status == 404
    finally:
        await stop_live(srv)


async def test_post_to_a_file_is_405(live: Live) -> None:
    r = await live.request("POST", "/public/index.html", body=b"x")
    assert r.status == 405
    assert r.header("allow") == "GET, HEAD, OPTIONS"
