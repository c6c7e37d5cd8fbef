"""Chat middleware: who may join which room, and who said what."""

from hero_fast.chat import ChatError
from hero_fast.middleware import ChatMiddleware


class ChatRules(ChatMiddleware):
    name = "chatRules"

    def join(self, connection, room):
        role = connection.session.get("role")
        if role is None:
            raise ChatError("log in to join a room")
        if room == "staff" and role != "staff":
            raise ChatError("the staff room is for staff only")

    def say(self, connection, room, payload):
        if connection is None:
            return None  # server code broadcasting (api.chat_room.broadcast without a sender)
        user = connection.session.get("user")
        if user is None:
            raise ChatError("log in to chat")
        # every member sees who said it: {"message", "room", "from", "user", "context", "sentAt"}
        return {**payload, "user": user}
