"""Configuration of chat.

hero-fast reads every module in this folder (in sorted order; names starting with "_" are
skipped). A module may define:

- `DEFAULT = {...}`: applied in every environment;
- a dict named after an environment (`development`, `test`, `production`, ...): applied on
  top of DEFAULT when that environment is selected (`HERO_FAST_ENV=production` or
  `hero-fast serve --env production`; the default is `development`).

Only the keys you set change; every other option keeps its built-in default. Env vars
(`HERO_FAST_PORT=8081`, `HERO_FAST__servers__web__port=8081`, ...) and command-line flags
(`hero-fast serve --port 8081`) win over these files.

    python -m hero_fast.config --markdown   # every option, its default and what it does
    hero-fast config                        # the effective value of each option and its origin
"""

DEFAULT = {
    "general": {
        "serverName": "chat",
        # Sent to every WebSocket client when it connects: {"welcome": ..., "context": "api"}
        "welcomeMessage": "Hello! Welcome to chat",
        # Chat rooms that exist from boot (clients can only join rooms that exist). Each keeps
        # its last 200 messages for 10 minutes, so a client that reconnects gets what it missed
        # (connection state recovery; docs/delivery.md). {} would keep no history.
        "startingChatRooms": {
            "defaultRoom": {"history": {"size": 200, "ttl": 600000}},
            "anotherRoom": {"history": {"size": 200, "ttl": 600000}},
        },
    },
    "servers": {
        "web": {
            # "host": "127.0.0.1",   # "0.0.0.0" listens on every interface
            # "port": 8080,
        },
    },
}

# Applied on top of DEFAULT in the development environment (the default one).
development = {
    "general": {"developmentMode": True},
}

# Applied on top of DEFAULT with HERO_FAST_ENV=production (or --env production).
# production = {
#     "servers": {
#         "web": {"host": "0.0.0.0", "certfile": "/etc/ssl/example.pem", "keyfile": "/etc/ssl/example.key"},
#         # Only pages from these origins may open a WebSocket.
#         "websocket": {"server": {"origins": ["https://app.example.com"]}},
#     },
# }
