"""actionheroClient.js and .min.js in headless Chromium against a live hero-fast Api.

Every test runs for both files (the ``variant`` fixture); each is bounded (the page waits
are at most a few seconds, a stuck test fails rather than hangs).
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import pytest
from _browser_support import LiveServer, client_state, connected_client, events, js, result, until, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")


def without_message_events(names: list[str]) -> list[str]:
    return [n for n in names if n != "message"]


# -- connect, welcome, details -----------------------------------------------------------------


async def test_connect_callback_and_promise_welcome_and_details(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    # callback form: (err, details)
    assert await js(page, "() => { H.make('a'); return H.call('connect', 'a', 'connect', []); }") is True
    err, details = await result(page, "connect")
    assert err is None
    assert details["context"] == "response" and details["status"] == "OK"
    info = details["data"]
    assert set(info) >= {"id", "fingerprint", "remoteIP", "remotePort", "connectedAt", "rooms"}

    st = await client_state(page)
    assert st["state"] == "connected"
    assert st["id"] == info["id"] and st["fingerprint"] == info["fingerprint"]
    assert st["details"] == details  # the answer is kept on client.details
    assert without_message_events(st["events"]) == ["welcome", "connected"]
    welcome = (await events(page, "a", "welcome"))[0]
    assert welcome == {
        "welcome": "Hello! Welcome to the actionhero api",
        "context": "api",
        "recovery": {"token": welcome["recovery"]["token"], "ttl": 120000},
    }
    assert await js(page, "() => H.clients.a.welcomeMessage") == welcome["welcome"]
    # the welcome came while connecting; "connected" once the details were in
    states = await js(page, "() => H.clients.a.seen.filter((e) => e.event !== 'message').map((e) => e.state)")
    assert states == ["connecting", "connected"]
    assert [c.id for c in server.connections()] == [info["id"]]

    # connect() on a connected client answers at once with the same details (both forms)
    again = await js(page, "() => H.clients.a.connect()")
    assert again == details
    await js(page, "() => H.call('again', 'a', 'connect', [])")
    assert await result(page, "again") == [None, details]
    assert len(server.connections()) == 1

    # promise form on a second client; options baked in from the config
    other = await connected_client(page, "b")
    assert other["data"]["id"] != info["id"]
    opts = await js(page, "() => H.clients.b.options")
    assert opts["url"] == server.url("").rstrip("/")
    assert opts["pathname"] == "/primus" and opts["cookieKey"] == "sessionID" and opts["apiPath"] == "/api"
    assert opts["reconnect"] == {"min": 100, "max": 400, "retries": 40, "factor": 2}
    assert opts["timeout"] == 10000 and opts["ping"] == 25000 and opts["pong"] == 10000
    assert opts["strategy"] == ["online", "timeout", "disconnect"] and opts["queueSize"] is None
    assert await js(page, "() => H.clients.b.websocketUrl()") == f"ws://127.0.0.1:{server.port}/primus"
    assert await js(page, "() => window.ActionheroWebsocketClient === window.ActionheroClient")


async def test_constructor_options_override_the_baked_ones(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    opts = await js(
        page,
        """() => new ActionheroClient({ reconnect: { retries: 3 }, ping: 1234, queueSize: 5,
                                        fingerprint: 'abc' }).options""",
    )
    assert opts["reconnect"] == {"min": 100, "max": 400, "retries": 3, "factor": 2}
    assert opts["ping"] == 1234 and opts["queueSize"] == 5 and opts["pong"] == 10000
    url = await js(
        page, "() => new ActionheroClient({ url: 'https://example.com:8443/app/', fingerprint: 'a b' }).websocketUrl()"
    )
    assert url == "wss://example.com:8443/app/primus?sessionID=a+b"
    backoff = await js(
        page,
        """() => { const c = new ActionheroClient({ reconnect: { min: 100, max: 1000, factor: 2 } });
             const out = {}; for (let a = 1; a <= 6; a++) { out[a] = [];
               for (let i = 0; i < 200; i++) out[a].push(c.backoff(a)); }
             return out; }""",
    )
    bounds = {1: (100, 125), 2: (150, 250), 3: (300, 500), 4: (600, 1000), 5: (1000, 1000), 6: (1000, 1000)}
    for attempt, values in backoff.items():
        low, high = bounds[int(attempt)]
        assert all(low <= v <= high for v in values), (attempt, min(values), max(values))
    assert len(set(backoff["2"])) > 10  # jittered


# -- actions ----------------------------------------------------------------------------------


async def test_action_callback_promise_errors_and_documentation(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    await connected_client(page)
    ok = await js(page, "() => H.clients.a.action('echo', { x: 'hi' })")
    assert ok["x"] == "hi" and ok["y"] == 7 and ok["context"] == "response"
    assert isinstance(ok["messageId"], int) and "error" not in ok

    await js(page, "() => H.call('cb', 'a', 'action', ['echo', { x: 2, y: 3 }])")
    cb = await result(page, "cb")
    assert cb["x"] == 2 and cb["y"] == 3 and cb["messageId"] > ok["messageId"]

    # callback as the second argument (no params): the response carries the error
    await js(page, "() => H.call('noparams', 'a', 'action', ['echo'])")
    missing = await result(page, "noparams")
    assert missing["error"] == "x is a required parameter for this action"
    unknown = await js(page, "() => H.clients.a.action('nope', {})")
    assert unknown["error"] == "unknown action or invalid apiVersion"

    # the caller's params object is not modified
    assert await js(page, "async () => { const p = { x: 1 }; await H.clients.a.action('echo', p); return p; }") == {
        "x": 1
    }
    doc = await js(page, "() => H.clients.a.documentation()")
    assert doc["status"] == "OK" and "echo" in doc["data"] and "status" in doc["data"]
    # several requests in flight, answered out of order, each matched by messageId
    out = await js(
        page,
        """() => Promise.all([H.clients.a.action('slow', { ms: 300 }), H.clients.a.action('echo', { x: 'fast' }),
                              H.clients.a.action('slow', { ms: 100 })])""",
    )
    assert [out[0]["slept"], out[1]["x"], out[2]["slept"]] == [300, "fast", 100]

    # actionWeb: the same action over HTTP, only when asked for
    web = await js(page, "() => H.clients.a.actionWeb('echo', { x: 'web' })")
    assert web["x"] == "web" and web["requesterInformation"]["fingerprint"] == (await client_state(page))["fingerprint"]
    web_err = await js(page, "() => H.clients.a.actionWeb('echo')")
    assert "x is a required parameter" in web_err["error"]


# -- rooms, say ---------------------------------------------------------------------------------


async def test_rooms_and_say_between_two_pages(chrome, server: LiveServer) -> None:
    page_a, page_b = await chrome.page(), await chrome.page()
    a = (await connected_client(page_a, "a"))["data"]["id"]
    b = (await connected_client(page_b, "b"))["data"]["id"]

    await js(page_a, "() => H.call('add', 'a', 'roomAdd', ['defaultRoom'])")
    assert await result(page_a, "add") == {"status": "OK", "data": True, "context": "response", "messageId": 2}
    assert await js(page_b, "() => H.clients.b.roomAdd('defaultRoom')") == {
        "status": "OK",
        "data": True,
        "context": "response",
        "messageId": 2,
    }
    assert (await client_state(page_a, "a"))["rooms"] == ["defaultRoom"]

    view = await js(page_a, "() => H.clients.a.roomView('defaultRoom')")
    assert view["status"] == "OK" and view["data"]["room"] == "defaultRoom"
    assert view["data"]["membersCount"] == 2 and set(view["data"]["members"]) == {a, b}
    await js(page_b, "() => H.call('view', 'b', 'roomView', ['defaultRoom'])")
    assert (await result(page_b, "view"))["data"]["membersCount"] == 2

    message = {"hello": "world", "n": [1, 2.5, None], "text": "caf\u00e9 </script>"}
    ack = await js(page_a, "(m) => H.clients.a.say('defaultRoom', m)", message)
    assert ack["status"] == "OK" and "error" not in ack
    for page, name in ((page_a, "a"), (page_b, "b")):
        said = await until(page, "(n) => H.seen(n, 'say').length === 1 && H.seen(n, 'say')[0]", name)
        assert said["message"] == message and said["from"] == a and said["room"] == "defaultRoom"
        assert said["context"] == "user" and isinstance(said["sentAt"], int)

    # b leaves: it gets no more chat from the room and cannot say into it
    await js(page_b, "() => H.call('leave', 'b', 'roomLeave', ['defaultRoom'])")
    assert (await result(page_b, "leave"))["status"] == "OK"
    assert (await client_state(page_b, "b"))["rooms"] == []
    await js(page_a, "() => H.call('say2', 'a', 'say', ['defaultRoom', 'second'])")
    assert (await result(page_a, "say2"))["status"] == "OK"
    await until(page_a, "() => H.seen('a', 'say').length === 2")
    denied = await js(page_b, "() => H.clients.b.say('defaultRoom', 'not a member')")
    assert denied["error"] == "Error: connection not in this room (defaultRoom)"
    await asyncio.sleep(0.2)
    assert len(await events(page_b, "b", "say")) == 1
    assert len(await events(page_a, "a", "say")) == 2

    nope = await js(page_a, "() => H.clients.a.roomAdd('noSuchRoom')")
    assert nope["error"] == "Error: room does not exist"
    assert (await client_state(page_a, "a"))["rooms"] == ["defaultRoom"]
    not_in = await js(page_b, "() => H.clients.b.roomView('anotherRoom')")
    assert not_in["error"] == "Error: connection not in this room (anotherRoom)"


async def test_detailsview_callback_promise_and_saved_details(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    first = await connected_client(page)
    await js(page, "() => H.clients.a.roomAdd('anotherRoom')")
    await js(page, "() => H.call('d', 'a', 'detailsView', [])")
    details = await result(page, "d")
    assert details["status"] == "OK" and details["data"]["id"] == first["data"]["id"]
    assert details["data"]["rooms"] == ["anotherRoom"]
    assert (await client_state(page))["details"] == details
    promised = await js(page, "() => H.clients.a.detailsView()")
    assert promised["data"]["rooms"] == ["anotherRoom"] and promised["messageId"] > details["messageId"]
    assert (await client_state(page))["details"] == promised


# -- file ----------------------------------------------------------------------------------------


async def test_file_text_binary_and_missing(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    await connected_client(page)
    await js(page, "() => H.call('f', 'a', 'file', ['hello.txt'])")
    text = await result(page, "f")
    assert text["content"] == "hello from a file \u2713\n" and text["error"] is None
    assert text["mime"] == "text/plain" and text["length"] == len("hello from a file \u2713\n".encode())
    assert text["context"] == "response" and isinstance(text["messageCount"], int)

    blob = await js(page, "() => H.clients.a.file('blob.bin')")
    assert blob["encoding"] == "base64" and base64.b64decode(blob["content"]) == bytes(range(256))
    assert blob["length"] == 256

    missing = await js(page, "() => H.clients.a.file('../secret.txt')")
    assert missing["error"] == "that file is not found" and missing["content"] is None
    missing = await js(page, "() => H.clients.a.file('nope.txt')")
    assert set(missing) >= {"content", "context", "error", "length", "messageCount", "mime"}
    # the generated client itself is a public file
    own = await js(page, "() => H.clients.a.file('javascript/actionheroClient.js')")
    assert own["error"] is None and "ActionheroClient" in own["content"]


# -- server pushes by context ------------------------------------------------------------------


async def test_alert_api_welcome_and_message_events(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    me = (await connected_client(page))["data"]["id"]
    conn = server.api.connections.get(me)
    pushes = [
        {"context": "alert", "message": "the server is restarting", "n": 1},
        {"context": "api", "info": "an api notice"},
        {"context": "somethingNew", "x": 2},
        {"welcome": "hello again", "context": "api"},
        {"context": "response", "messageId": 99999, "note": "nobody asked"},
    ]
    for push in pushes:
        assert conn.send(push)
    pushes = [{**push, "pushSeq": i + 1} for i, push in enumerate(pushes)]  # numbered for recovery
    await until(page, "() => H.seen('a', 'message').length >= 7")  # welcome + details + 5 pushes
    assert await events(page, "a", "alert") == [pushes[0]]
    assert await events(page, "a", "api") == [pushes[1], pushes[2]]
    welcomes = await events(page, "a", "welcome")
    assert welcomes[-1] == pushes[3] and await js(page, "() => H.clients.a.welcomeMessage") == "hello again"
    messages = await events(page, "a", "message")
    assert messages[-5:] == pushes
    assert await events(page, "a", "say") == []


# -- fingerprint ----------------------------------------------------------------------------------


async def test_fingerprint_links_the_http_cookie_and_the_websocket(chrome, server: LiveServer) -> None:
    page = await chrome.page()  # loading the page over HTTP set the sessionID cookie
    cookies = {c["name"]: c["value"] for c in await chrome.context.cookies(server.url())}
    assert "sessionID" in cookies
    cookie = cookies["sessionID"]
    details = await connected_client(page)
    assert details["data"]["fingerprint"] == cookie
    assert await js(page, "() => H.clients.a.fingerprint") == cookie
    assert server.api.connections.get(details["data"]["id"]).fingerprint == cookie
    http = await js(page, "() => fetch('/api/echo?x=1').then((r) => r.json())")
    assert http["requesterInformation"]["fingerprint"] == cookie

    # a second tab of the same browser: another connection, the same fingerprint
    other = await connected_client(await chrome.page(), "b")
    assert other["data"]["id"] != details["data"]["id"] and other["data"]["fingerprint"] == cookie
    # another browser (context) has another cookie, hence another fingerprint
    context = await chrome.context.browser.new_context()
    try:
        stranger = await context.new_page()
        await stranger.goto(server.url(f"/test-{chrome.variant}.html"))
        theirs = await connected_client(stranger, "c")
        their_cookie = {c["name"]: c["value"] for c in await context.cookies(server.url())}["sessionID"]
        assert theirs["data"]["fingerprint"] == their_cookie != cookie
    finally:
        await context.close()


# -- reconnect, offline queue ------------------------------------------------------------------


async def test_reconnect_after_server_restart_rejoins_rooms_and_refreshes_details(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    first = await connected_client(page)
    await js(page, "() => Promise.all([H.clients.a.roomAdd('defaultRoom'), H.clients.a.roomAdd('anotherRoom')])")
    old_id = first["data"]["id"]

    await server.stop()  # graceful: close 1001, the client reconnects
    await until(page, "() => H.clients.a.state === 'reconnecting' && H.count('a', 'reconnecting') >= 2")
    assert await js(page, "() => H.count('a', 'disconnected')") == 0
    await server.start()  # a new Api on the same port
    await until(page, "() => H.count('a', 'reconnect') === 1", timeout=6000)

    st = await client_state(page)
    assert st["state"] == "connected" and st["id"] != old_id
    assert st["rooms"] == ["defaultRoom", "anotherRoom"]
    assert st["details"]["data"]["id"] == st["id"] and st["details"]["data"]["rooms"] == st["rooms"]
    for room in ("defaultRoom", "anotherRoom"):
        assert list(server.api.chat_room.members(room)) == [st["id"]]
    reconnecting = await events(page, "a", "reconnecting")
    assert reconnecting[0]["attempt"] == 1 and 75 <= reconnecting[0]["delay"] <= 400
    assert [r["attempt"] for r in reconnecting] == list(range(1, len(reconnecting) + 1))
    names = without_message_events(st["events"])
    assert names[:2] == ["welcome", "connected"]
    assert names[-4:] == ["welcome", "connected", "reconnect", "recovered"]
    assert "disconnected" not in names
    # the state was in the stopped process: nothing to recover, the rooms were joined again
    assert await events(page, "a", "recovered") == [
        {"recovered": False, "reason": "expired", "id": st["id"], "rooms": []}
    ]

    # it works as before: chat in a rejoined room
    await js(page, "() => H.clients.a.say('anotherRoom', 'back')")
    said = await until(page, "() => H.seen('a', 'say')[0]")
    assert said["message"] == "back" and said["from"] == st["id"]


async def test_requests_made_offline_are_queued_and_sent_on_reconnect(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    await connected_client(page)
    await js(page, "() => H.clients.a.roomAdd('defaultRoom')")
    await server.stop()
    await until(page, "() => H.clients.a.state === 'reconnecting'")
    await js(
        page,
        """() => { const c = H.clients.a; window.queued = [];
             const keep = (i) => (r) => { window.queued[i] = r; };
             c.action('echo', { x: 'queued 1' }).then(keep(0));
             c.say('defaultRoom', 'said while offline').then(keep(1));
             c.action('echo', { x: 'queued 3' }, keep(2));
             c.detailsView().then(keep(3)); }""",
    )
    await asyncio.sleep(0.4)
    assert await js(page, "() => window.queued.length") == 0  # waiting, not failed, not sent elsewhere
    await server.start()
    done = await until(page, "() => window.queued.filter(Boolean).length === 4 && window.queued")
    assert done[0]["x"] == "queued 1" and done[2]["x"] == "queued 3"
    assert done[1]["status"] == "OK"
    new_id = await js(page, "() => H.clients.a.id")
    assert done[3]["data"]["id"] == new_id and done[3]["data"]["rooms"] == ["defaultRoom"]
    # sent in the order made, after the room was rejoined (the say reached the room)
    assert [r["messageId"] for r in done] == sorted(r["messageId"] for r in done)
    said = await until(page, "() => H.seen('a', 'say')[0]")
    assert said["message"] == "said while offline" and said["from"] == new_id


async def test_offline_requests_fail_after_timeout_and_beyond_queue_size(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    await connected_client(page, "a", {"timeout": 700, "queueSize": 2})
    await server.stop()
    await until(page, "() => H.clients.a.state === 'reconnecting'")
    await js(
        page,
        """() => { const c = H.clients.a; window.out = []; window.t0 = Date.now();
             [1, 2, 3].forEach((i) => c.action('echo', { x: i }).then((r) => {
               window.out.push({ i: i, r: r, after: Date.now() - window.t0 }); })); }""",
    )
    out = await until(page, "() => window.out.length === 3 && window.out", timeout=5000)
    full, *timed_out = out
    assert full["i"] == 3 and full["after"] < 300
    assert full["r"]["error"] == ("Error: not connected, and the offline queue is full (queueSize 2): request not sent")
    for entry in timed_out:
        assert entry["r"]["error"] == (
            "Error: not connected: the request waited 700 ms in the offline queue and was not sent"
        )
        assert entry["r"]["context"] == "response" and 650 <= entry["after"] < 3000
    assert sorted(e["i"] for e in timed_out) == [1, 2]
    assert await js(page, "() => H.clients.a.state") == "reconnecting"  # still trying
    await js(page, "() => H.clients.a.disconnect()")


async def test_a_request_in_flight_when_the_connection_drops_fails_clearly(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    me = (await connected_client(page))["data"]["id"]
    await js(
        page, "() => { window.slow = null; H.clients.a.action('slow', { ms: 2000 }).then((r) => (window.slow = r)); }"
    )
    await wait_for(lambda: server.api.connections.get(me).pending_actions == 1, what="the action to start")
    server.api.connections.get(me).close(4001, "test drop")
    slow = await until(page, "() => window.slow")
    assert slow["error"].startswith("Error: connection lost before the response arrived")
    assert "may or may not have been processed" in slow["error"]
    await until(page, "() => H.count('a', 'reconnect') === 1")
    assert (await js(page, "() => H.clients.a.action('echo', { x: 'after' })"))["x"] == "after"


# -- heartbeat ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "server_overrides", [{"servers": {"websocket": {"server": {"pingInterval": 200, "timeout": 600}}}}]
)
async def test_heartbeat_is_answered_and_keeps_the_connection(chrome, server: LiveServer) -> None:
    pongs: list[str] = []
    original = server.api.websocket.primus

    def counting(conn: Any, text: str) -> None:
        if text.startswith("primus::pong::"):
            pongs.append(text)
        original(conn, text)

    server.api.websocket.primus = counting
    page = await chrome.page()
    me = (await connected_client(page))["data"]["id"]
    await asyncio.sleep(2)  # ten heartbeats; a client silent through three is closed
    st = await client_state(page)
    assert st["state"] == "connected" and st["id"] == me
    assert "reconnecting" not in st["events"] and "error" not in st["events"]
    assert len(pongs) >= 5
    assert server.api.connections.get(me) is not None


async def test_a_silent_server_is_treated_as_dead_and_the_client_reconnects(chrome, server: LiveServer) -> None:
    original = server.api.websocket.primus
    swallowed: list[str] = []

    def silent(conn: Any, text: str) -> None:  # the server stops answering the client's pings
        swallowed.append(text)

    page = await chrome.page()
    me = (await connected_client(page, "a", {"ping": 300, "pong": 300}))["data"]["id"]
    server.api.websocket.primus = silent
    t0 = time.monotonic()
    error = await until(page, "() => H.seen('a', 'error')[0]", timeout=5000)
    elapsed = time.monotonic() - t0
    assert error["error"] == "connection timed out: the server sent nothing for 600 ms"
    assert 0.2 <= elapsed < 3
    assert swallowed and swallowed[0].startswith("primus::ping::")
    server.api.websocket.primus = original
    await until(page, "() => H.count('a', 'reconnect') === 1", timeout=5000)
    st = await client_state(page)
    # the client closed the old connection with 4000 (not leaving): it came back recovered
    assert st["state"] == "connected" and st["id"] == me
    assert await events(page, "a", "recovered") == [{"recovered": True, "id": me, "rooms": []}]
    assert len(server.connections()) == 1  # the old connection was closed, not left behind


# -- the server says goodbye, disconnect ------------------------------------------------------


@pytest.mark.parametrize("server_overrides", [{"servers": {"websocket": {"destroyClientsOnShutdown": True}}}])
async def test_primus_server_close_stops_reconnecting(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    await connected_client(page)
    await js(page, "() => H.clients.a.roomAdd('defaultRoom')")
    await server.stop()  # "primus::server::close", then close 1000
    await until(page, "() => H.clients.a.state === 'disconnected' && H.count('a', 'disconnected') === 1")
    after = await js(page, "() => H.clients.a.action('echo', { x: 1 })")
    assert after["error"] == "Error: not connected: call connect() first (client state: disconnected)"
    await server.start()
    await asyncio.sleep(0.8)
    st = await client_state(page)
    assert st["state"] == "disconnected" and "reconnecting" not in st["events"]
    assert server.connections() == []
    # final, not broken: an explicit connect() opens a new connection and rejoins its rooms
    again = await js(page, "() => H.clients.a.connect()")
    assert again["data"]["rooms"] == ["defaultRoom"] and len(server.connections()) == 1


async def test_the_quit_verb_ends_the_connection_without_reconnecting(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    await connected_client(page)
    await js(page, "() => { window.quit = null; H.clients.a.send({ event: 'quit' }).then((r) => (window.quit = r)); }")
    await until(page, "() => H.clients.a.state === 'disconnected'")
    quit = await until(page, "() => window.quit")
    assert "closed the connection and asked the client not to reconnect" in quit["error"]
    await asyncio.sleep(0.5)
    assert await js(page, "() => H.count('a', 'reconnecting')") == 0
    assert server.connections() == []


async def test_disconnect_is_final_and_idempotent(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    await connected_client(page)
    out = await js(
        page,
        """async () => { const c = H.clients.a; const slow = c.action('slow', { ms: 1000 });
             c.disconnect(); c.disconnect(); c.end();
             const after = await c.action('echo', { x: 1 });
             return { slow: await slow, after: after, state: c.state, n: H.count('a', 'disconnected') }; }""",
    )
    assert out["state"] == "disconnected" and out["n"] == 1
    assert out["slow"]["error"] == (
        "Error: the client disconnected (disconnect() was called) before the response arrived"
    )
    assert out["after"]["error"] == "Error: not connected: call connect() first (client state: disconnected)"
    await wait_for(lambda: server.connections() == [], what="the server to see the close")
    await asyncio.sleep(0.4)
    assert await js(page, "() => H.count('a', 'reconnecting') + H.count('a', 'disconnected')") == 1
    assert server.connections() == []


async def test_connect_disconnect_loops_never_multiply_sockets(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    await js(page, "() => H.make('a')")
    out = await js(
        page,
        """async () => { const c = H.clients.a; const opened = [];
             const Real = window.WebSocket;
             window.WebSocket = function (url, protocols) {
               const ws = protocols ? new Real(url, protocols) : new Real(url); opened.push(ws); return ws; };
             window.WebSocket.prototype = Real.prototype;
             const ignore = () => {};
             const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
             for (let i = 0; i < 20; i++) { c.connect().catch(ignore); c.disconnect(); }  // no socket at all
             const none = opened.length;
             // closed while opening:
             for (let i = 0; i < 3; i++) { c.connect().catch(ignore); await tick(); c.disconnect(); }
             for (let i = 0; i < 5; i++) { await c.connect(); c.disconnect(); }
             const all = await Promise.all([c.connect(), c.connect(), c.connect(), c.connect()]);
             window.WebSocket = Real;
             return { none: none, opened: opened.length, ids: all.map((d) => d.data.id),
                      live: opened.filter((ws) => ws.readyState <= 1).length }; }""",
    )
    assert out["none"] == 0
    assert out["opened"] == 9  # one socket per connect() that had to open one
    assert len(set(out["ids"])) == 1 and out["live"] == 1
    me = out["ids"][0]
    await wait_for(lambda: [c.id for c in server.connections()] == [me], what="only the last connection to remain")
    assert await js(page, "() => H.clients.a.state") == "connected"


async def test_reconnect_gives_up_after_retries(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    await connected_client(page, "a", {"reconnect": {"retries": 2, "min": 50, "max": 100}})
    await js(
        page,
        """() => { window.q = null; const c = H.clients.a;
             c.once('reconnecting', () => c.action('echo', { x: 1 }).then((r) => (window.q = r))); }""",
    )
    await server.stop()
    await until(page, "() => H.clients.a.state === 'disconnected'", timeout=5000)
    assert await js(page, "() => H.count('a', 'reconnecting')") == 2
    errors = [e["error"] for e in await events(page, "a", "error")]
    assert errors[-1] == "gave up reconnecting after 2 attempts"
    assert await js(page, "() => H.count('a', 'disconnected')") == 1
    queued = await until(page, "() => window.q")
    assert queued["error"] == "Error: gave up reconnecting after 2 attempts; request not sent"
    # a first connect to a server that is down: the same policy, then connect() fails
    failed = await js(
        page,
        """() => H.make('b', { reconnect: { retries: 1, min: 50 } }).connect().then(
             () => 'connected?', (e) => e.message)""",
    )
    assert failed == "gave up reconnecting after 1 attempt"
    assert await js(page, "() => H.clients.b.state") == "disconnected"


async def test_browser_offline_and_online_events(chrome, server: LiveServer) -> None:
    page = await chrome.page()
    await connected_client(page)
    await chrome.context.set_offline(True)
    await until(page, "() => H.count('a', 'offline') === 1 && H.clients.a.state === 'reconnecting'")
    await asyncio.sleep(0.5)
    assert await js(page, "() => H.count('a', 'reconnecting')") == 0  # waits for the network
    await chrome.context.set_offline(False)
    await until(page, "() => H.count('a', 'reconnect') === 1")
    assert await js(page, "() => H.count('a', 'online')") == 1
    assert (await js(page, "() => H.clients.a.action('echo', { x: 'online' })"))["x"] == "online"


# -- clientUrl -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_url", "expected"),
    [
        ("http://localhost:{port}", "ws://localhost:{port}/primus"),  # a fixed URL (another origin)
        ("'ws://' + window.location.host", "ws://127.0.0.1:{port}/primus"),  # an expression
    ],
)
async def test_client_url_fixed_or_expression(chrome, server: LiveServer, client_url: str, expected: str) -> None:
    from hero_fast.client_js import write_client

    server.api.config["servers"]["websocket"]["clientUrl"] = client_url.format(port=server.port)
    write_client(server.api)  # re-rendered while serving: the new file is served at once
    page = await chrome.page()
    assert await js(page, "() => new ActionheroClient().websocketUrl()") == expected.format(port=server.port)
    details = await connected_client(page)
    assert details["data"]["id"] in server.api.connections.by_id
