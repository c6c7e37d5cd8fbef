"""An action: a class with a name, a description, its inputs and a `run` method.

Every module in actions/ is loaded at boot; each Action subclass in it becomes callable
  - over HTTP:      GET or POST /api/randomNumber
  - over WebSocket: {"event": "action", "params": {"action": "randomNumber"}}
Whatever `run` puts in `data.response` is sent back.
"""

from hero_fast.actions import Action, Input  # noqa: F401  (Input: see echo.py)


class RandomNumber(Action):
    name = "randomNumber"
    description = "I am an API method which will generate a random number"
    inputs = {}

    async def run(self, data):
        import random

        data.response["randomNumber"] = random.random()
