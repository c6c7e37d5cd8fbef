"""Actions: the Action base class and its inputs, action middleware, and the
registry that loads actions and processes requests.

::

    from hero_fast.actions import Action, Input, ActionError

    class Add(Action):
        name = "add"
        inputs = {"a": Input(required=True, formatter=int), "b": Input(default=0, formatter=int)}

        def run(self, data):
            return {"sum": data.params["a"] + data.params["b"]}
"""

from hero_fast.actions.action import (
    MISSING,
    Action,
    ActionData,
    ActionError,
    ActionMiddleware,
    ActionResult,
    Input,
)
from hero_fast.actions.registry import TOO_MANY, UNKNOWN, ActionLoadError, ActionRegistry, version_key

__all__ = [
    "MISSING",
    "TOO_MANY",
    "UNKNOWN",
    "Action",
    "ActionData",
    "ActionError",
    "ActionLoadError",
    "ActionMiddleware",
    "ActionRegistry",
    "ActionResult",
    "Input",
    "version_key",
]
