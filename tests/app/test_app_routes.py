"""Routes (config ``routes``, actionhero's shape) and HTTP responses shaped by actions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _project import write

from hero_fast.routes import RoutesError, RouteTable
from hero_fast.testing import TestApi

ROUTES = """
DEFAULT = {
    "routes": {
        "get": [
            {"path": "/users/:id", "action": "user"},
            {"path": "/reports/:year(\\\\d{4})", "action": "report", "apiVersion": 2},
            {"path": "/files/:path", "action": "download", "matchTrailingPathParts": True},
            {"path": "/Old/Place", "action": "moved"},
        ],
        "post": [{"path": "/users", "action": "createUser"}],
        "all": [{"path": "/ping", "action": "status"}],
    }
}
"""

ACTIONS = """
from hero_fast.actions import Action, Input


class User(Action):
    name = "user"
    inputs = {"id": Input(required=True), "q": Input()}

    def run(self, data):
        return {"id": data.params["id"], "q": data.params.get("q")}


class ReportV1(Action):
    name = "report"
    version = 1
    inputs = {"year": Input()}

    def run(self, data):
        return {"v": 1}


class ReportV2(Action):
    name = "report"
    version = 2
    inputs = {"year": Input(formatter=int)}

    def run(self, data):
        return {"v": 2, "year": data.params["year"]}


class CreateUser(Action):
    name = "createUser"
    inputs = {"name": Input(required=True)}

    def run(self, data):
        data.set_status(201)
        data.set_header("Location", "/api/users/42")
        data.set_header("Set-Cookie", "a=1")
        data.set_header("Set-Cookie", "b=2")
        return {"created": data.params["name"]}


class Moved(Action):
    name = "moved"

    def run(self, data):
        data.redirect("/api/users/1", 301)


class Download(Action):
    name = "download"
    inputs = {"path": Input(required=True), "as": Input()}

    def run(self, data):
        data.send_file(data.params["path"], download_name=data.params.get("as"))


class Absolute(Action):
    name = "absolute"
    inputs = {"file": Input(required=True)}

    def run(self, data):
        data.send_file(data.params["file"], content_type="application/x-test")
"""


@pytest.fixture
async def t(tmp_path: Path):  # type: ignore[no-untyped-def]
    write(tmp_path, {"config/routes.py": ROUTES, "actions/routed.py": ACTIONS, "public/docs/a b.txt": "hello file\n"})
    (tmp_path / "public" / "big.bin").write_bytes(os.urandom(700_000 + 3 * (256 << 10)))
    async with TestApi(tmp_path) as api:
        yield api


async def test_path_params_merge_into_params_and_win_over_the_query(t: TestApi) -> None:
    r = await t.http("GET", "/api/users/7?q=x&id=9")
    assert r.status == 200
    assert (r.json()["id"], r.json()["q"]) == ("7", "x")
    assert r.json()["requesterInformation"]["receivedParams"]["id"] == "7"


async def test_params_are_percent_decoded_after_splitting(t: TestApi) -> None:
    assert (await t.http("GET", "/api/users/a%2Fb%20c")).json()["id"] == "a/b c"


async def test_a_regex_constraint_must_match_the_whole_part_and_api_version_applies(t: TestApi) -> None:
    r = await t.http("GET", "/api/reports/2026")
    assert r.json()["v"] == 2 and r.json()["year"] == 2026
    assert (await t.http("GET", "/api/reports/2026?apiVersion=1")).json()["v"] == 1  # the client's wins
    assert (await t.http("GET", "/api/reports/20261")).status == 404
    assert (await t.http("GET", "/api/reports/abcd")).status == 404


async def test_routes_are_per_method_with_all_and_head_using_get(t: TestApi) -> None:
    assert (await t.http("POST", "/api/users/7")).status == 404
    assert (await t.http("POST", "/api/ping")).json()["nodeStatus"] == "Node Healthy"
    assert (await t.http("DELETE", "/api/ping")).status == 200
    head = await t.http("HEAD", "/api/users/7")
    assert head.status == 200 and head.body == b""


async def test_static_parts_compare_case_insensitively(t: TestApi) -> None:
    r = await t.http("GET", "/api/old/PLACE")
    assert r.status == 301 and r.header("location") == "/api/users/1"


async def test_simple_routing_keeps_working_next_to_routes(t: TestApi) -> None:
    assert (await t.http("GET", "/api/user?id=3")).json()["id"] == "3"
    assert (await t.http("GET", "/api?action=user&id=4")).json()["id"] == "4"
    assert (await t.http("GET", "/api/no/such/route")).json()["error"] == "unknown action or invalid apiVersion"


async def test_an_action_sets_status_and_headers(t: TestApi) -> None:
    r = await t.http("POST", "/api/users", json={"name": "ann"})
    assert r.status == 201
    assert r.json()["created"] == "ann"
    assert r.header("location") == "/api/users/42"
    assert [v for k, v in r.headers if k == "set-cookie" and v in ("a=1", "b=2")] == ["a=1", "b=2"]
    bad = await t.http("POST", "/api/users", json={})
    assert bad.status == 422  # an error keeps the error's status
    assert bad.header("location") is None


async def test_send_file_streams_with_ranges_and_validators(t: TestApi, tmp_path: Path) -> None:
    data = (tmp_path / "public" / "big.bin").read_bytes()
    r = await t.http("GET", "/api/files/big.bin?as=report%20%222026%22.bin")
    assert r.status == 200 and r.body == data
    assert r.header("content-length") == str(len(data)) and r.header("accept-ranges") == "bytes"
    assert r.header("content-disposition") == (
        "attachment; filename=\"report _2026_.bin\"; filename*=UTF-8''report%20_2026_.bin"
    )
    etag = r.header("etag")
    assert etag and r.header("cache-control") is None
    assert (await t.http("GET", "/api/files/big.bin", headers={"If-None-Match": etag})).status == 304
    part = await t.http("GET", "/api/files/big.bin", headers={"Range": "bytes=300000-900000"})
    assert part.status == 206 and part.body == data[300000:900001]
    assert part.header("content-range") == f"bytes 300000-900000/{len(data)}"
    tail = await t.http("GET", "/api/files/big.bin", headers={"Range": "bytes=-10"})
    assert tail.body == data[-10:]
    stale = await t.http("GET", "/api/files/big.bin", headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status == 200 and stale.body == data
    bad = await t.http("GET", "/api/files/big.bin", headers={"Range": f"bytes={len(data)}-"})
    assert bad.status == 416 and bad.header("content-range") == f"bytes */{len(data)}"
    nested = await t.http("GET", "/api/files/docs/a%20b.txt")
    assert nested.body == b"hello file\n" and nested.header("content-type") == "text/plain; charset=utf-8"


async def test_send_file_cannot_leave_public_unless_absolute(t: TestApi, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    assert (await t.http("GET", "/api/files/..%2Fsecret.txt")).status == 404
    r = await t.http("GET", f"/api/absolute?file={tmp_path / 'secret.txt'}")
    assert r.status == 200 and r.body == b"secret" and r.header("content-type") == "application/x-test"


async def test_http_replies_are_refused_over_websocket(t: TestApi) -> None:
    client = t.connect()
    r = await client.action("createUser", name="ann")
    assert r["error"] == "set_status() works over HTTP only (this request came over webSocket)"
    r = await client.action("download", path="big.bin")
    assert r["error"] == "send_file() works over HTTP only (this request came over webSocket)"


async def test_static_files_support_ranges_too(t: TestApi) -> None:
    r = await t.http("GET", "/public/docs/a%20b.txt", headers={"Range": "bytes=0-4"})
    assert (r.status, r.body, r.header("content-range")) == (206, b"hello", "bytes 0-4/11")


@pytest.mark.parametrize(
    ("routes", "error"),
    [
        ({"get": [{"path": "users", "action": "x"}]}, "get[0]: path must be a string starting with '/', got 'users'"),
        ({"get": [{"path": "/u", "action": ""}]}, "get[0]: action must be a non-empty string, got ''"),
        ({"gett": []}, "unknown method 'gett'; allowed: get, post, put, patch, delete, head, options, all"),
        ({"get": [{"path": "/u/:id(", "action": "x"}]}, "get[0]: ':id(': the regex must end with ')'"),
        ({"get": [{"path": "/u/:id([)", "action": "x"}]}, "get[0]: ':id([)': invalid regex: "),
        ({"get": [{"path": "/u", "action": "x", "matchTrailingPathParts": True}]},
         "get[0]: matchTrailingPathParts needs a path ending in a :variable"),
        ({"get": [{"path": "/u", "action": "x", "verb": "get"}]},
         "get[0]: unknown key(s) verb; allowed: action, apiVersion, matchTrailingPathParts, path"),
    ],
)
def test_malformed_routes_say_which_route(routes: dict[str, object], error: str) -> None:
    with pytest.raises(RoutesError) as info:
        RouteTable(routes)
    assert str(info.value).startswith(error)


def test_match_trailing_path_parts() -> None:
    table = RouteTable({"get": [{"path": "/f/:rest", "action": "x", "matchTrailingPathParts": True}]})
    matched = table.match("GET", ["f", "a", "b%2Fc"])
    assert matched is not None and matched[1] == {"rest": "a/b/c"}
    assert table.match("GET", ["f"]) is None


async def test_http_replies_never_echo_secrets_back(t: TestApi) -> None:
    from hero_fast.actions import Action, Input

    class Login(Action):
        name = "login"
        inputs = {"user": Input(), "password": Input(), "api_key": Input()}

        def run(self, data):  # type: ignore[no-untyped-def]
            return {"ok": True}

    t.actions.register(Login)
    r = await t.http("POST", "/api/login", json={"user": "ann", "password": "hunter2", "api_key": "k"})
    received = r.json()["requesterInformation"]["receivedParams"]
    assert received == {"action": "login", "apiVersion": 1, "user": "ann", "password": "[REDACTED]",
                        "api_key": "[REDACTED]"}
    assert b"hunter2" not in r.body
