"""initializers/database.py: the sqlite3 file, its demo users and their password hashes."""

import hashlib
import sqlite3
from pathlib import Path

import pytest

from hero_fast.testing import TestApi

PROJECT = Path(__file__).resolve().parent.parent


async def test_the_database_is_a_wal_file_with_the_demo_users(api, tmp_path):
    db = api.state.accounts.db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # other processes share it
    assert (tmp_path / "auth-chat.db").is_file()
    users = db.execute("SELECT name, role, banned FROM users ORDER BY name").fetchall()
    assert users == [("alice", "member", 0), ("bob", "member", 0), ("carol", "staff", 0), ("mallory", "member", 1)]


async def test_passwords_are_salted_pbkdf2_hashes_never_plain_text(api):
    rows = api.state.accounts.db.execute("SELECT name, salt, iterations, password_hash FROM users").fetchall()
    salts = set()
    for name, salt, iterations, password_hash in rows:
        password = f"{name}-pw".encode()
        assert password not in salt + password_hash
        assert iterations == api.config["authChat"]["passwordIterations"]
        assert password_hash == hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
        salts.add(salt)
    assert len(salts) == len(rows)  # a salt of its own per user


async def test_a_second_boot_keeps_the_users_and_stop_closes_the_database(tmp_path):
    config = {"authChat": {"database": str(tmp_path / "app.db")}}
    async with TestApi(PROJECT, config=config) as first:
        first.state.accounts.db.execute("UPDATE users SET role = 'staff' WHERE name = 'bob'")
        db = first.state.accounts.db
    with pytest.raises(sqlite3.ProgrammingError):  # closed by the initializer's stop()
        db.execute("SELECT 1")
    async with TestApi(PROJECT, config=config) as second:
        assert second.state.accounts.user("bob") == {"name": "bob", "role": "staff", "banned": False}
        assert second.state.accounts.db.execute("SELECT count(*) FROM users").fetchone()[0] == 4
