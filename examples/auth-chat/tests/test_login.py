"""Logging in and out (actions/session.py) and remembered logins (middleware/remembered_login.py)."""


async def test_login_fills_the_session(api):
    client = api.connect()
    assert (await client.action("whoami"))["user"] is None
    response = await client.action("login", name="carol", password="carol-pw")
    assert (response["user"], response["role"]) == ("carol", "staff")
    assert client.connection.session == {"user": "carol", "role": "staff"}
    assert (await client.action("whoami"))["user"] == "carol"


async def test_a_wrong_password_or_name_is_refused_alike(api):
    client = api.connect()
    assert (await client.action("login", name="alice", password="bob-pw"))["error"] == "wrong name or password"
    assert (await client.action("login", name="nobody", password="x"))["error"] == "wrong name or password"
    assert client.connection.session == {}
    response = await api.http("POST", "/api/login", json={"name": "alice", "password": "nope"})
    assert response.status == 401


async def test_a_banned_user_cannot_log_in(api):
    client = api.connect()
    assert (await client.action("login", name="mallory", password="mallory-pw"))["error"] == "mallory is banned"
    assert (await client.action("whoami"))["user"] is None


async def test_a_connection_logs_out_before_it_logs_in_as_someone_else(api, login):
    carol = await login("carol")
    await carol.room_add("staff")
    response = await carol.action("login", name="bob", password="bob-pw")
    assert response["error"] == "already logged in as carol: log out first"
    assert carol.connection.session["user"] == "carol"


async def test_a_browser_stays_logged_in_through_its_fingerprint_cookie(api, login):
    await login("alice", fingerprint="browser-1")
    # a reload, or a reconnect to another worker: a new connection with the same cookie
    again = api.connect(fingerprint="browser-1")
    assert again.connection.session == {"user": "alice", "role": "member"}
    assert (await again.action("whoami"))["user"] == "alice"
    other_browser = api.connect(fingerprint="browser-2")
    assert (await other_browser.action("whoami"))["user"] is None


async def test_a_banned_users_remembered_login_is_refused_and_forgotten(api, login):
    await login("bob", fingerprint="bobs-browser")
    api.state.accounts.db.execute("UPDATE users SET banned = 1 WHERE name = 'bob'")
    again = api.connect(fingerprint="bobs-browser")
    assert again.connection.session == {}
    assert api.state.accounts.db.execute("SELECT count(*) FROM logins").fetchone()[0] == 0


async def test_a_login_over_http_carries_over_to_the_next_requests(api):
    response = await api.http("POST", "/api/login", json={"name": "carol", "password": "carol-pw"})
    assert response.status == 200 and response.json()["user"] == "carol"
    cookie = response.header("set-cookie").partition(";")[0]  # "sessionID=<40 hex>"
    assert (await api.http("GET", "/api/whoami", headers={"cookie": cookie})).json()["user"] == "carol"
    assert (await api.http("GET", "/api/whoami")).json()["user"] is None  # over HTTP the session is per request
    # the WebSocket of the same browser starts logged in
    fingerprint = cookie.partition("=")[2]
    assert api.connect(fingerprint=fingerprint).connection.session["user"] == "carol"


async def test_logout_leaves_the_rooms_and_forgets_the_login(api, login):
    carol = await login("carol", fingerprint="carols-browser")
    await carol.room_add("staff")
    assert (await carol.action("logout"))["user"] is None
    assert carol.connection.rooms == [] and carol.connection.session == {}
    assert (await carol.action("logout"))["error"] == "log in first"
    assert api.connect(fingerprint="carols-browser").connection.session == {}
