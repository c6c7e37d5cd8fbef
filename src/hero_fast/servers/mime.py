"""MIME types for static files.

Deterministic on every machine: the standard library's built-in table (never the
host's ``/etc/mime.types``, which differs between systems) plus explicit entries
for the types a web front-end serves. Text types carry ``; charset=utf-8``.
"""

from __future__ import annotations

import mimetypes
import os

__all__ = ["DEFAULT_TYPE", "content_type", "guess_type"]

DEFAULT_TYPE = "application/octet-stream"

_db = mimetypes.MimeTypes(filenames=())  # built-in table only

_EXPLICIT = {
    ".html": "text/html",
    ".htm": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".ico": "image/vnd.microsoft.icon",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".csv": "text/csv",
    ".xml": "application/xml",
    ".pdf": "application/pdf",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz",
    ".zst": "application/zstd",
    ".zip": "application/zip",
    ".mp3": "audio/mpeg",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}

# Non-``text/*`` types whose content is text (so it gets a charset).
_TEXTUAL = frozenset(
    {
        "application/json",
        "application/manifest+json",
        "application/javascript",
        "application/xml",
        "application/xhtml+xml",
        "image/svg+xml",
    }
)

_cache: dict[str, str] = {}


def guess_type(name: str) -> str:
    """The bare MIME type for a file name (``application/octet-stream`` if unknown)."""
    ext = os.path.splitext(name)[1].lower()
    mime = _EXPLICIT.get(ext)
    if mime is None:
        mime = _db.guess_type("x" + ext, strict=False)[0] if ext else None
    return mime or DEFAULT_TYPE


def content_type(name: str) -> str:
    """The ``Content-Type`` header value for a file name, with ``charset=utf-8`` for text."""
    ext = os.path.splitext(name)[1].lower()
    value = _cache.get(ext)
    if value is None:
        mime = guess_type(name)
        value = f"{mime}; charset=utf-8" if mime.startswith("text/") or mime in _TEXTUAL else mime
        if len(_cache) < 1024:
            _cache[ext] = value
    return value
