"""Chat rules (middleware/chat_rules.py): who may join which room, and who said what."""


async def test_only_logged_in_users_may_join_a_room(api):
    anonymous = api.connect()
    response = await anonymous.room_add("lobby")
    assert response["error"] == "Error: log in to join a room"
    assert anonymous.connection.rooms == []


async def test_only_staff_may_join_the_staff_room(api, login):
    bob, carol = await login("bob"), await login("carol")
    assert (await bob.room_add("staff"))["error"] == "Error: the staff room is for staff only"
    assert (await bob.room_add("lobby"))["status"] == "OK"
    assert (await carol.room_add("staff"))["status"] == "OK"
    assert (await carol.room_add("lobby"))["status"] == "OK"


async def test_say_stamps_the_senders_user_name(api, login):
    alice, bob = await login("alice"), await login("bob")
    await alice.room_add("lobby")
    await bob.room_add("lobby")
    assert (await alice.say("lobby", "hi bob"))["status"] == "OK"
    message = await bob.next("user")
    assert (message["user"], message["message"], message["from"]) == ("alice", "hi bob", alice.id)


async def test_say_is_refused_once_the_session_has_no_user(api, login):
    alice, bob = await login("alice"), await login("bob")
    await alice.room_add("lobby")
    await bob.room_add("lobby")
    alice.connection.session.clear()
    assert (await alice.say("lobby", "anyone?"))["error"] == "Error: log in to chat"
    assert bob.received("user") == []


async def test_server_code_may_still_say_in_a_room(api, login):
    bob = await login("bob")
    await bob.room_add("lobby")
    api.chat_room.broadcast("lobby", "maintenance at noon")  # no sender: nobody to stamp
    message = await bob.next("user")
    assert message["message"] == "maintenance at noon" and "user" not in message
