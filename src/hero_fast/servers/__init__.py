"""Servers on the shared port: the web (HTTP) server and the WebSocket server."""
