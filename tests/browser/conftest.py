"""Fixtures of the browser tests (see _browser_support.py)."""

from _browser_support import browser, chrome, server, server_overrides, variant

__all__ = ["browser", "chrome", "server", "server_overrides", "variant"]
