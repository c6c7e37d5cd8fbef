"""An action with a required input.

    curl 'http://127.0.0.1:8080/api/echo?message=hello'
    → {"message": "hello", "serverInformation": {...}, "requesterInformation": {...}}

Without `message` the caller gets "message is a required parameter for this action"
(HTTP 422). Params that are not declared in `inputs` are dropped before `run`.
"""

from hero_fast.actions import Action, Input


class Echo(Action):
    name = "echo"
    description = "I send back the message you give me"
    inputs = {
        "message": Input(required=True),
    }

    async def run(self, data):
        # data.params: the declared inputs; data.connection: who is calling (id, remoteIP,
        # rooms, ...); data.response: what is sent back.
        data.response["message"] = data.params["message"]
