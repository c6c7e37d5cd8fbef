"""Configuration of auth-chat: hero-fast's options, and the app's own section `authChat`.

hero-fast keeps a top-level section it does not know (`authChat` here) as it is: the app
reads it from `api.config["authChat"]`, it can be set per environment (below) or by env var
(`HERO_FAST__authChat__database='"/var/lib/auth-chat.db"'`), and `hero-fast config` shows it.
"""

DEFAULT = {
    "general": {
        "serverName": "auth-chat",
        "welcomeMessage": "Welcome to auth-chat: log in to chat",
        # Clients can only join rooms that exist; the chat middleware decides who may.
        "startingChatRooms": {"lobby": {}, "staff": {}},
    },
    "servers": {
        "web": {
            # HTTP replies would otherwise echo the fingerprint (the cookie a login is remembered
            # by, HttpOnly) in their body, where a page's script could read it.
            "metadataOptions": {"requesterInformation": False},
        },
    },
    "authChat": {
        # The sqlite3 file, relative to the project folder; every worker opens the same one.
        "database": "data/auth-chat.db",
        # PBKDF2-HMAC-SHA256 rounds for new password hashes (OWASP's 2023 figure). Each
        # hash records its own count, so raising this later keeps old passwords working.
        "passwordIterations": 600_000,
    },
}

development = {
    "general": {"developmentMode": True},
}

# The tests make a fresh database each time: fewer rounds keep them fast.
test = {
    "authChat": {"passwordIterations": 1_000},
}
