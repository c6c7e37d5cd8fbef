"""The `auth` action middleware, the GET /api/users/:name route and poke (actions/users.py)."""


async def test_actions_with_the_auth_middleware_need_a_login(api):
    anonymous = api.connect()
    for action, params in [("user", {"name": "bob"}), ("poke", {"to": "bob"}), ("logout", {})]:
        assert (await anonymous.action(action, params))["error"] == "log in first"
    response = await api.http("GET", "/api/users/bob")
    assert (response.status, response.json()["error"]) == (401, "log in first")


async def test_the_users_route_takes_the_name_from_the_path(api):
    login = await api.http("POST", "/api/login", json={"name": "alice", "password": "alice-pw"})
    cookie = {"cookie": login.header("set-cookie").partition(";")[0]}
    response = await api.http("GET", "/api/users/carol", headers=cookie)
    assert response.status == 200
    assert {k: response.json()[k] for k in ("name", "role")} == {"name": "carol", "role": "staff"}
    missing = await api.http("GET", "/api/users/zed", headers=cookie)
    assert (missing.status, missing.json()["error"]) == (404, "no user named 'zed'")


async def test_poke_reaches_every_connection_of_the_user(api, login):
    alice = await login("alice")
    bob_phone, bob_laptop = await login("bob"), await login("bob")
    response = await alice.action("poke", to="bob")
    assert (response["to"], response["local"], response["remote"]) == ("bob", 2, 0)
    for bob in (bob_phone, bob_laptop):
        poke = await bob.next("alert")
        assert poke == {"context": "alert", "event": "poke", "from": "alice", "message": "alice poked you"}
    assert alice.received("alert") == []


async def test_poke_someone_who_is_not_connected_reaches_nobody(api, login):
    alice = await login("alice")
    bob = await login("bob")
    assert api.state.accounts.connection_ids("bob") == [bob.id]
    bob.close()  # destroy middleware: bob's connection is forgotten
    assert api.state.accounts.connection_ids("bob") == []
    response = await alice.action("poke", to="bob")
    assert (response["local"], response["remote"]) == (0, 0)
    assert (await alice.action("poke", to="zed"))["error"] == "no user named 'zed'"


async def test_a_user_who_reconnects_can_be_poked_again(api, login):
    alice = await login("alice")
    bob = await login("bob", fingerprint="bobs-browser")
    bob.drop()  # the network lost it
    back = api.connect(fingerprint="bobs-browser")  # the browser reconnects: logged in by its cookie
    # what a recovering client sends first; recovery is off (config/api.py), so the new
    # connection keeps its own id, the one the app knows
    await back.recover(bob)
    assert (await alice.action("poke", to="bob"))["local"] == 1
    assert (await back.next("alert"))["from"] == "alice"


async def test_poke_counts_only_connections_a_server_still_has(api, login):
    alice = await login("alice")
    await login("bob")
    # what a killed process leaves behind: a connection id that no server has any more
    api.state.accounts.db.execute("INSERT INTO connections VALUES ('dead-connection', 'bob')")
    response = await alice.action("poke", to="bob")
    assert (response["local"], response["remote"]) == (1, 0)
