"""Logging in and out. The login lives in `connection.session` (as long as the WebSocket, or
one HTTP request) and is remembered by the browser's fingerprint cookie, so the next
connection from that browser starts logged in (middleware/remembered_login.py)."""

import inspect
import os

from hero_fast.actions import Action, ActionError, Input


class Login(Action):
    name = "login"
    description = "Log in with a name and a password"
    inputs = {
        "name": Input(required=True, formatter=str),
        "password": Input(required=True, formatter=str),
    }

    async def run(self, data):
        if "user" in data.session:  # switching users would keep the rooms the first one joined
            raise ActionError(f"already logged in as {data.session['user']}: log out first", 409)
        accounts = data.api.state.accounts
        user = await accounts.check_password(data.params["name"], data.params["password"])
        if user is None:
            raise ActionError("wrong name or password", 401)
        if user["banned"]:
            raise ActionError(f"{user['name']} is banned", 403)
        accounts.sign_in(data.connection, user)
        return {"user": user["name"], "role": user["role"]}


class Logout(Action):
    name = "logout"
    description = "Log out: leave every room and forget the remembered login"
    middleware = ["auth"]

    async def run(self, data):
        chat = data.api.chat_room
        for room in list(data.connection.rooms):  # a logged-out connection keeps no seat in the staff room
            left = chat.remove_member(data.connection, room)
            if inspect.isawaitable(left):  # when leave middleware is async
                await left
        data.api.state.accounts.sign_out(data.connection)
        return {"user": None}


class WhoAmI(Action):
    name = "whoami"
    description = "Who this connection is logged in as (user is null for nobody), and which process serves it"

    def run(self, data):
        return {"user": data.session.get("user"), "role": data.session.get("role"), "worker": os.getpid()}
