"""The database: users, remembered logins and who is connected, in one sqlite3 file.

Every process opens the same file (each of `hero-fast serve --workers N` runs this
initializer); WAL mode lets them all read while one of them writes. Actions and middleware
use it through `api.state.accounts`.

sqlite3 is synchronous. The queries here are single-row lookups in a local file that take
microseconds, so they run on the event loop; hashing a password takes a large part of a
second on purpose, so that runs in a thread. (A database server would want an async driver.)
"""

import asyncio
import hashlib
import hmac
import os
import sqlite3
import time

from hero_fast import Initializer

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('member', 'staff')),
    banned        INTEGER NOT NULL DEFAULT 0,
    salt          BLOB NOT NULL,
    iterations    INTEGER NOT NULL,
    password_hash BLOB NOT NULL
);
-- Logins remembered by the browser's fingerprint cookie (sessionID): a reload, or a
-- reconnect to any worker, is still logged in.
CREATE TABLE IF NOT EXISTS logins (
    fingerprint TEXT PRIMARY KEY,
    user        TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    expires_at  REAL NOT NULL
);
-- Each user's live WebSocket connections, whichever process serves them.
CREATE TABLE IF NOT EXISTS connections (
    id   TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS connections_by_user ON connections (user);
"""

# name, role, password, banned (README.md lists them)
DEMO_USERS = [
    ("alice", "member", "alice-pw", False),
    ("bob", "member", "bob-pw", False),
    ("carol", "staff", "carol-pw", False),
    ("mallory", "member", "mallory-pw", True),
]


def hash_password(password, salt, iterations):
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)


class Accounts:
    """What the actions and middleware ask of the database."""

    def __init__(self, db, iterations, remember_for):
        self.db = db
        self.iterations = iterations
        self.remember_for = remember_for  # seconds a login is remembered by its cookie

    # -- users ---------------------------------------------------------------------------

    def add_user(self, name, role, password, banned=False):
        salt = os.urandom(16)
        self.db.execute(
            "INSERT OR IGNORE INTO users VALUES (?, ?, ?, ?, ?, ?)",
            (name, role, banned, salt, self.iterations, hash_password(password, salt, self.iterations)),
        )

    def user(self, name):
        """{"name", "role", "banned"}, or None when there is no such user."""
        row = self.db.execute("SELECT name, role, banned FROM users WHERE name = ?", (name,)).fetchone()
        return None if row is None else {"name": row[0], "role": row[1], "banned": bool(row[2])}

    async def check_password(self, name, password):
        """The user when `password` is theirs, else None."""
        row = self.db.execute(
            "SELECT salt, iterations, password_hash FROM users WHERE name = ?", (name,)
        ).fetchone()
        # an unknown name costs a hash too, so the time taken does not tell which names exist
        salt, iterations, expected = row if row is not None else (os.urandom(16), self.iterations, b"")
        digest = await asyncio.to_thread(hash_password, password, salt, iterations)
        if row is None or not hmac.compare_digest(digest, expected):
            return None
        return self.user(name)

    # -- who is logged in where ----------------------------------------------------------

    def sign_in(self, connection, user):
        """Log `connection` in as `user`, and remember it for the connection's fingerprint."""
        now = time.time()
        self.db.execute("DELETE FROM logins WHERE expires_at <= ?", (now,))
        self.db.execute(
            "INSERT OR REPLACE INTO logins VALUES (?, ?, ?)",
            (connection.fingerprint, user["name"], now + self.remember_for),
        )
        self._attach(connection, user)

    def restore(self, connection):
        """Log `connection` in again when its fingerprint has a remembered login; a banned
        user's login is forgotten instead. The user, or None."""
        row = self.db.execute(
            "SELECT users.name FROM logins JOIN users ON users.name = logins.user"
            " WHERE logins.fingerprint = ? AND logins.expires_at > ?",
            (connection.fingerprint, time.time()),
        ).fetchone()
        user = None if row is None else self.user(row[0])
        if user is None:
            return None
        if user["banned"]:
            self.db.execute("DELETE FROM logins WHERE fingerprint = ?", (connection.fingerprint,))
            return None
        self._attach(connection, user)
        return user

    def sign_out(self, connection):
        self.db.execute("DELETE FROM logins WHERE fingerprint = ?", (connection.fingerprint,))
        self.detach(connection.id)
        connection.session.clear()

    def _attach(self, connection, user):
        connection.session.update(user=user["name"], role=user["role"])
        # only a WebSocket can be pushed to (an HTTP request is over once it is answered)
        if connection.type == "webSocket":
            self.db.execute("INSERT OR REPLACE INTO connections VALUES (?, ?)", (connection.id, user["name"]))

    def detach(self, connection_id):
        self.db.execute("DELETE FROM connections WHERE id = ?", (connection_id,))

    def connection_ids(self, name):
        """The ids of `name`'s WebSocket connections, on every worker and node."""
        return [row[0] for row in self.db.execute("SELECT id FROM connections WHERE user = ?", (name,))]


class Database(Initializer):
    priority = 100  # before anything else of the app uses api.state.accounts

    def initialize(self, api):
        settings = api.config["authChat"]
        path = api.project_dir / settings["database"]  # an absolute path stays as it is
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: every statement commits by itself (each one is a whole change);
        # timeout: how long to wait while another worker writes
        db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        db.executescript(SCHEMA)
        expire = api.config["servers"]["web"]["fingerprint"]["expire"]  # the cookie's lifetime
        accounts = Accounts(db, settings["passwordIterations"], remember_for=expire)
        for name, role, password, banned in DEMO_USERS:
            if accounts.user(name) is None:
                accounts.add_user(name, role, password, banned)
        api.state.accounts = accounts

    def stop(self, api):
        api.state.accounts.db.close()
