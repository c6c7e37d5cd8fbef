"""Action middleware: actions that list `middleware = ["auth"]` answer only logged-in callers."""

from hero_fast.actions import ActionError
from hero_fast.middleware import ActionMiddleware


class Auth(ActionMiddleware):
    name = "auth"

    def pre_processor(self, data):
        # runs before the inputs are checked, so a caller who is not logged in learns only that
        if "user" not in data.session:
            raise ActionError("log in first", 401)
