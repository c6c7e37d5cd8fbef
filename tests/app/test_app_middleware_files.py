"""Middleware declared in the project's middleware/ folder: action, connection and chat,
as instances or subclasses, registered with no entry point of the user's."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from _project import module_of, write

from hero_fast.app import Api
from hero_fast.project import ProjectError, ProjectWarning
from hero_fast.testing import TestApi

MIDDLEWARE = """
from hero_fast.actions import ActionError
from hero_fast.chat import ChatError
from hero_fast.middleware import ActionMiddleware, ChatMiddleware, ConnectionMiddleware

EVENTS = []


def require_login(data):
    if "user" not in data.session:
        raise ActionError("log in first", 401)


auth = ActionMiddleware("auth", pre_processor=require_login)


class Stamp(ActionMiddleware):
    name = "stamp"
    global_ = True
    priority = 5

    def post_processor(self, data):
        data.response["stamped"] = True


class Audit(ConnectionMiddleware):
    name = "audit"

    def create(self, connection):
        EVENTS.append(("create", connection.type))

    async def destroy(self, connection):
        EVENTS.append(("destroy", connection.type, connection.close_code))


class MembersOnly(ChatMiddleware):
    name = "members-only"

    def join(self, connection, room):
        if room == "vip" and not connection.session.get("vip"):
            raise ChatError("vip members only")

    def say(self, connection, room, payload):
        return {**payload, "message": str(payload["message"]).upper()}
"""

ACTIONS = """
from hero_fast.actions import Action, Input


class Login(Action):
    name = "login"
    inputs = {"user": Input(required=True), "vip": Input(default=False)}

    def run(self, data):
        data.session["user"] = data.params["user"]
        data.session["vip"] = data.params["vip"] in (True, "true", "1")
        return {"ok": True}


class Secret(Action):
    name = "secret"
    middleware = ["auth"]

    def run(self, data):
        return {"user": data.session["user"]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(
        tmp_path,
        {
            "middleware/rules.py": MIDDLEWARE,
            "actions/account.py": ACTIONS,
            "config/api.py": 'DEFAULT = {"general": {"startingChatRooms": {"defaultRoom": {}, "vip": {}}}}\n',
        },
    )


async def test_action_middleware_from_files_guards_actions_and_sees_the_session(project: Path) -> None:
    async with TestApi(project) as t:
        alice = t.connect()
        assert await alice.action("secret") == {
            "error": "log in first",
            "context": "response",
            "messageId": "test-1",
        }  # global post-processors only run after a successful run
        assert (await alice.action("login", user="alice"))["stamped"] is True
        r = await alice.action("secret")
        assert (r["user"], r["stamped"]) == ("alice", True)
        assert alice.connection.session == {"user": "alice", "vip": False}
        assert t.connect().connection.session == {}  # another connection, another session


async def test_connection_and_chat_middleware_from_files(project: Path) -> None:
    async with TestApi(project) as t:
        events = module_of(t.api.actions.middleware["stamp"]).EVENTS
        alice, bob = t.connect(), t.connect()
        assert events[-2:] == [("create", "webSocket"), ("create", "webSocket")]
        assert (await alice.room_add("vip"))["error"] == "Error: vip members only"
        await alice.action("login", user="alice", vip="true")
        assert (await alice.room_add("vip"))["status"] == "OK"
        await bob.room_add("defaultRoom")
        await alice.room_add("defaultRoom")
        await alice.say("defaultRoom", "hello")
        assert (await bob.next("user"))["message"] == "HELLO"
        bob.close(1000)
        await asyncio.sleep(0)
        assert ("destroy", "webSocket", 1000) in events


def test_an_action_naming_undefined_middleware_fails_at_load(tmp_path: Path) -> None:
    write(tmp_path, {"actions/account.py": ACTIONS})
    with pytest.raises(ProjectError) as info:
        Api(tmp_path).load()
    assert str(info.value) == (
        "actions/account.py: action 'secret' uses action middleware 'auth', which is not defined "
        "(defined: none; put it in middleware/)"
    )


def test_duplicate_middleware_names_name_the_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "middleware/a.py": "from hero_fast.middleware import ActionMiddleware\nx = ActionMiddleware('auth')\n",
            "middleware/b.py": "from hero_fast.middleware import ActionMiddleware\ny = ActionMiddleware('auth')\n",
        },
    )
    with pytest.raises(ProjectError, match=r"^middleware/b\.py: action middleware 'auth' already exists$"):
        Api(tmp_path).load()


def test_middleware_without_a_name_warns(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "middleware/a.py": """
                from hero_fast.middleware import ChatMiddleware

                class Forgotten(ChatMiddleware):
                    def say(self, connection, room, payload):
                        return None
            """
        },
    )
    with pytest.warns(ProjectWarning, match=r"middleware/a\.py: Forgotten is middleware without a `name`"):
        Api(tmp_path).load()


def test_one_middleware_object_imported_into_two_files_is_registered_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "middleware/common.py": "from hero_fast.middleware import ActionMiddleware\nauth = ActionMiddleware('a')\n",
            "middleware/more.py": "from .common import auth\n",
        },
    )
    api = Api(tmp_path)
    api.load()
    assert list(api.actions.middleware) == ["a"]


def test_a_bad_hook_is_a_one_line_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"middleware/a.py": "from hero_fast.middleware import ActionMiddleware as M\nm = M('x', pre_processor=3)\n"},
    )
    with pytest.raises(ProjectError) as info:
        Api(tmp_path).load()
    expected = r"middleware/a\.py:2: TypeError: action middleware 'x': pre_processor must be callable"
    assert re.fullmatch(expected, str(info.value))
