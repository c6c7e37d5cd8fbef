"""Tests of this project's actions: `python -m pytest` (needs pytest and pytest-asyncio:
`pip install 'hero-fast[testing]'`). hero_fast.testing boots the project in-process: its
config (environment "test"), initializers, middleware, actions and chat rooms."""

from pathlib import Path

from hero_fast.testing import TestApi

PROJECT = Path(__file__).resolve().parent.parent


async def test_echo_sends_the_message_back():
    async with TestApi(PROJECT) as api:
        client = api.connect()
        response = await client.action("echo", message="hello")
        assert response["message"] == "hello"
        missing = await client.action("echo")
        assert missing["error"] == "message is a required parameter for this action"


async def test_random_number_over_http():
    async with TestApi(PROJECT) as api:
        result = await api.http("GET", "/api/randomNumber")
        assert result.status == 200
        assert 0 <= result.json()["randomNumber"] < 1


async def test_chat_in_the_default_room():
    async with TestApi(PROJECT) as api:
        alice, bob = api.connect(), api.connect()
        await alice.room_add("defaultRoom")
        await bob.room_add("defaultRoom")
        await alice.say("defaultRoom", "hi bob")
        message = await bob.next("user")
        assert (message["message"], message["from"]) == ("hi bob", alice.id)


async def test_a_client_that_drops_gets_what_it_missed():
    async with TestApi(PROJECT) as api:
        alice, bob = api.connect(), api.connect()
        await alice.room_add("defaultRoom")
        await bob.room_add("defaultRoom")
        alice.drop()  # the network lost her connection
        await bob.say("defaultRoom", "while you were away")
        back = api.connect(fingerprint=alice.fingerprint)  # her browser reconnects
        recovered = await back.recover(alice)
        assert recovered["recovered"] is True and recovered["id"] == alice.id
        assert (await back.next("user"))["message"] == "while you were away"
