"""Connection middleware: a connection whose fingerprint cookie has a remembered login starts
logged in (a reload, a reconnect, an HTTP request with the cookie), unless the user is banned."""

from hero_fast.middleware import ConnectionMiddleware


class RememberedLogin(ConnectionMiddleware):
    name = "rememberedLogin"

    def create(self, connection):
        connection.api.state.accounts.restore(connection)

    def destroy(self, connection):
        # A WebSocket that is gone can no longer be poked, unless it dropped and may come back
        # (connection state recovery): then pokes are held for it, and if it never comes back,
        # poke forgets the id when the server answers NOWHERE.
        if not connection.recoverable:
            connection.api.state.accounts.detach(connection.id)
