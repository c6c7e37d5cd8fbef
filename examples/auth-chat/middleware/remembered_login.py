"""Connection middleware: a connection whose fingerprint cookie has a remembered login starts
logged in (a reload, a reconnect, an HTTP request with the cookie), unless the user is banned."""

from hero_fast.middleware import ConnectionMiddleware


class RememberedLogin(ConnectionMiddleware):
    name = "rememberedLogin"

    def create(self, connection):
        connection.api.state.accounts.restore(connection)

    def destroy(self, connection):
        # a WebSocket that is gone can no longer be poked
        connection.api.state.accounts.detach(connection.id)
