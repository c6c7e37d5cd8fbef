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
        assert poke == {"context": "alert", "event": "poke", "from": "alice", "message": "alice poked you",
                        "pushSeq": 1}  # numbered for connection state recovery
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


async def test_a_poke_while_away_is_held_and_arrives_after_the_reconnect(api, login):
    alice = await login("alice")
    bob = await login("bob", fingerprint="bobs-browser")
    await bob.room_add("lobby")
    bob.drop()  # the network lost it: its state is kept for recovery
    assert (await alice.action("poke", to="bob"))["held"] == 1
    back = api.connect(fingerprint="bobs-browser")  # the browser reconnects
    data = await back.recover(bob)
    assert data["id"] == bob.id and data["rooms"] == ["lobby"]
    assert back.connection.session["user"] == "bob"
    assert (await back.next("alert"))["from"] == "alice"  # the poke held while away
    assert api.state.accounts.connection_ids("bob") == [bob.id]
    assert (await alice.action("poke", to="bob"))["local"] == 1
    assert len(back.received("alert")) == 2


async def test_a_user_who_never_comes_back_is_forgotten_at_the_next_poke(api, login):
    alice = await login("alice")
    bob = await login("bob")
    bob.drop()
    api.api.cluster._recovery._saved.clear()  # as if its recovery window had passed
    response = await alice.action("poke", to="bob")
    assert (response["local"], response["remote"], response["held"]) == (0, 0, 0)
    assert api.state.accounts.connection_ids("bob") == []


async def test_poke_counts_only_connections_a_server_still_has(api, login):
    alice = await login("alice")
    await login("bob")
    # what a killed process leaves behind: a connection id that no server has any more
    api.state.accounts.db.execute("INSERT INTO connections VALUES ('dead-connection', 'bob')")
    response = await alice.action("poke", to="bob")
    assert (response["local"], response["remote"]) == (1, 0)
