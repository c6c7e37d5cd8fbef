"""Users: a profile behind a route with a path param, and a push to another user."""

from hero_fast import Sent
from hero_fast.actions import Action, ActionError, Input


def find_user(data, name):
    user = data.api.state.accounts.user(name)
    if user is None:
        raise ActionError(f"no user named {name!r}", 404)
    return user


class User(Action):
    name = "user"
    description = "A user's profile; over HTTP also GET /api/users/:name (config/routes.py)"
    middleware = ["auth"]
    inputs = {"name": Input(required=True, formatter=str)}

    def run(self, data):
        user = find_user(data, data.params["name"])
        return {"name": user["name"], "role": user["role"]}


class Poke(Action):
    name = "poke"
    description = "Poke every connection of a user, whichever worker or node serves it"
    middleware = ["auth"]
    inputs = {"to": Input(required=True, formatter=str)}

    async def run(self, data):
        to = find_user(data, data.params["to"])["name"]
        me = data.session["user"]
        message = {"context": "alert", "event": "poke", "from": me, "message": f"{me} poked you"}
        accounts = data.api.state.accounts
        sent = []
        for connection_id in accounts.connection_ids(to):
            # LOCAL: queued here; REMOTE: handed to the worker or node that has it, through Redis;
            # HELD: it dropped and may come back (connection state recovery): kept for it;
            # NOWHERE: gone for good (or its process was killed before it could forget it)
            result = await data.api.connections.send(connection_id, message)
            if result is Sent.NOWHERE:
                accounts.detach(connection_id)
            sent.append(result)
        return {
            "to": to,
            "local": sent.count(Sent.LOCAL),
            "remote": sent.count(Sent.REMOTE),
            "held": sent.count(Sent.HELD),
        }
