"""Static files from the project's ``public/`` folder.

Safe by construction: a request path is split into segments, anything that could
leave the folder (``..``, NUL, backslashes, absolute paths, drive letters) or names a
hidden file is refused, and the real path (symlinks resolved) must lie inside the real
``public/`` folder. Only regular files are served (never a FIFO or a device, which could
block or stream forever); a directory serves its ``index.html``.

Small files (``CACHE_FILE_MAX``, 1 MiB) are kept in memory, keyed by real path and
validated on every request by ``stat`` (mtime, size, inode), so an edit shows up at once;
the cache as a whole is bounded (``CACHE_TOTAL_MAX`` bytes, LRU). Larger files are
streamed (:func:`read_chunks`) in ``STREAM_CHUNK`` pieces read off the event loop, so their
size costs no memory. :func:`byte_range` reads a ``Range`` header (RFC 9110 14.2).

:func:`read_public_file` is the entry point for the WebSocket ``file`` verb; the web server
uses :func:`store` and :class:`StaticFiles` directly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat as _stat
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

from hero_fast.servers.mime import content_type, guess_type

__all__ = [
    "CACHE_FILE_MAX",
    "CACHE_TOTAL_MAX",
    "STREAM_CHUNK",
    "FileEntry",
    "FileTooLarge",
    "StaticFiles",
    "byte_range",
    "file_entry",
    "read_chunks",
    "read_public_file",
    "safe_segments",
    "store",
]

log = logging.getLogger("hero_fast.servers.static")

CACHE_FILE_MAX = 1 << 20  # files up to this size are cached in memory
CACHE_TOTAL_MAX = 64 << 20  # bytes of file bodies kept in the cache at most
CACHE_ENTRIES_MAX = 4096
STREAM_CHUNK = 256 << 10  # bytes read (off the loop) per piece of a streamed file
DEFAULT_WS_FILE_MAX = 1 << 20  # when general.maxFileSize is not configured
INDEX_FILE = "index.html"

_O_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOCTTY", 0)
)
_WINDOWS = os.name == "nt"


class FileTooLarge(Exception):
    """The file exists but is larger than the cap for this use."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"file is {size} bytes, larger than the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class FileEntry:
    """One resolved file: metadata, precomputed headers and (when small) its bytes."""

    __slots__ = (
        "body",
        "cache_ok",
        "content_type",
        "etag",
        "key",
        "last_modified",
        "mime",
        "mtime",
        "mtime_ms",
        "path",
        "size",
    )

    def __init__(self, path: str, st: os.stat_result, body: bytes | None) -> None:
        self.path = path
        self.size = st.st_size
        self.key = (st.st_mtime_ns, st.st_size, st.st_ino)
        self.mtime = int(st.st_mtime)  # whole seconds, as HTTP dates have
        self.mtime_ms = st.st_mtime_ns // 1_000_000
        self.etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
        self.last_modified = formatdate(st.st_mtime, usegmt=True)
        self.mime = guess_type(path)
        self.content_type = content_type(path)
        self.body = body
        self.cache_ok = True

    def read(self, limit: int) -> bytes:
        """The file's bytes (from memory when cached), refusing more than ``limit``."""
        if self.body is not None:
            return self.body
        if self.size > limit:
            raise FileTooLarge(self.size, limit)
        fd = os.open(self.path, _O_FLAGS)
        try:
            st = os.fstat(fd)
            if not _stat.S_ISREG(st.st_mode):
                raise FileNotFoundError(self.path)
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read(limit + 1)
        finally:
            os.close(fd)
        if len(data) > limit:
            raise FileTooLarge(len(data), limit)
        return data


def file_entry(path: str) -> FileEntry | None:
    """A :class:`FileEntry` (metadata only) for the regular file at ``path``, or None."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except (OSError, ValueError):
        return None
    return FileEntry(real, st, None) if _stat.S_ISREG(st.st_mode) else None


def _read_at(fd: int, offset: int, n: int) -> bytes:
    return os.pread(fd, n, offset)


async def read_chunks(path: str, start: int, length: int) -> AsyncIterator[bytes]:
    """``length`` bytes of the file at ``path`` from ``start``, in ``STREAM_CHUNK`` pieces,
    each read in a worker thread. Stops early (short) if the file shrinks meanwhile."""
    loop = asyncio.get_running_loop()
    fd = await loop.run_in_executor(None, os.open, path, _O_FLAGS)
    try:
        end = start + length
        pos = start
        while pos < end:
            data = await loop.run_in_executor(None, _read_at, fd, pos, min(STREAM_CHUNK, end - pos))
            if not data:
                log.warning("%s shrank while being sent (%d of %d bytes sent)", path, pos - start, length)
                return
            pos += len(data)
            yield data
    finally:
        os.close(fd)


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The one range ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` of ``header`` as ``(start,
    end exclusive)`` for a file of ``size`` bytes. None means serve the whole file (the header
    is not a single byte range we handle, which RFC 9110 lets a server ignore); ``(0, 0)``
    with ``size > 0`` never occurs, ``(-1, -1)`` means unsatisfiable (416)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == "") or (not first and not last):
        return None
    if not first:  # the last n bytes
        n = int(last)
        if n == 0:
            return (-1, -1)
        return (max(0, size - n), size)
    start = int(first)
    if start >= size:
        return (-1, -1)
    end = size if not last else min(size, int(last) + 1)
    if end <= start:
        return None  # last < first: invalid, ignored
    return (start, end)


def safe_segments(relpath: str) -> list[str] | None:
    """The path segments of ``relpath`` (a decoded URL path or a ``file`` verb argument),
    or None when it could name anything outside ``public/`` or a hidden file."""
    if "\x00" in relpath or "\\" in relpath:
        return None
    parts = []
    for part in relpath.split("/"):
        if part in ("", "."):
            continue
        if part == ".." or (part[0] == "." and part != ".well-known"):
            return None
        if _WINDOWS and (":" in part or part.rstrip(" .") != part):
            return None
        parts.append(part)
    return parts


class StaticFiles:
    """Resolves and serves files under one ``public/`` folder, with a bounded cache."""

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        self.root = None if root is None else os.fspath(root)
        self._real_root: str | None = None
        self._cache: OrderedDict[str, FileEntry] = OrderedDict()
        self._cached_bytes = 0

    # -- resolution ------------------------------------------------------------

    def _root(self) -> str | None:
        real = self._real_root
        if real is None and self.root is not None:
            candidate = os.path.realpath(self.root)
            if os.path.isdir(candidate):
                real = self._real_root = candidate
        return real

    def _inside(self, root: str, real: str) -> bool:
        return real == root or real.startswith(root if root.endswith(os.sep) else root + os.sep)

    def _walk(self, root: str, base: str, parts: list[str]) -> tuple[str, os.stat_result | None] | None:
        """Descend from the real directory ``base`` through ``parts`` with one
        ``lstat`` each; a symlink is resolved and must stay inside ``root``. The
        result is a real path (and its stat, None when ``parts`` is empty)."""
        real = base
        st: os.stat_result | None = None
        for part in parts:
            real = os.path.join(real, part)
            try:
                st = os.lstat(real)
                if _stat.S_ISLNK(st.st_mode):
                    real = os.path.realpath(real)
                    if not self._inside(root, real):
                        return None
                    st = os.stat(real)
            except (OSError, ValueError):
                return None
        return real, st

    def resolve(self, relpath: str) -> tuple[str, os.stat_result] | None:
        """The real path and stat of the regular file ``relpath`` names under the
        root (a directory means its index.html), or None if there is no such file
        inside the root."""
        root = self._root()
        if root is None:
            return None
        parts = safe_segments(relpath)
        if parts is None:
            return None
        dir_only = relpath.endswith("/")  # "page.txt/" names no file
        base = root
        for _ in range(2):  # the file itself, then a directory's index.html
            if _WINDOWS:  # junctions and other reparse points: let realpath judge
                real = os.path.realpath(os.path.join(base, *parts))
                if not self._inside(root, real):
                    return None
                st = None
            else:
                found = self._walk(root, base, parts)
                if found is None:
                    return None
                real, st = found
            try:
                if st is None:
                    st = os.stat(real)
            except (OSError, ValueError):
                return None
            if _stat.S_ISREG(st.st_mode):
                return None if dir_only else (real, st)
            if not _stat.S_ISDIR(st.st_mode):
                return None
            dir_only = False
            base, parts = real, [INDEX_FILE]
        return None

    # -- lookup and cache ------------------------------------------------------

    def lookup(self, relpath: str) -> FileEntry | None:
        """The entry for ``relpath``: cached bytes for a small file (read now if the
        cache is stale), metadata only for a large one. None if not found."""
        found = self.resolve(relpath)
        if found is None:
            return None
        real, st = found
        cache = self._cache
        entry = cache.get(real)
        if entry is not None:
            if entry.key == (st.st_mtime_ns, st.st_size, st.st_ino):
                cache.move_to_end(real)
                return entry
            self._evict(real)
        if st.st_size > CACHE_FILE_MAX:
            return FileEntry(real, st, None)
        try:
            entry = self._load_small(real)
        except OSError:
            return None
        if entry is None:
            return None
        if entry.body is not None:
            self._insert(real, entry)
        return entry

    def _load_small(self, real: str) -> FileEntry | None:
        """Open, check and read a small file; the entry is cacheable (``cache_ok``)
        only when what was read matches what fstat saw."""
        fd = os.open(real, _O_FLAGS)
        try:
            st = os.fstat(fd)
            if not _stat.S_ISREG(st.st_mode):
                return None
            if st.st_size > CACHE_FILE_MAX:  # grew since stat
                return FileEntry(real, st, None)
            with os.fdopen(fd, "rb", closefd=False) as f:
                body = f.read(CACHE_FILE_MAX + 1)
        finally:
            os.close(fd)
        if len(body) > CACHE_FILE_MAX:
            return FileEntry(real, os.stat(real), None)
        entry = FileEntry(real, st, body)
        if len(body) != st.st_size:  # being written right now: serve what we read, do not cache
            entry.size = len(body)
            entry.cache_ok = False
        return entry

    def _insert(self, real: str, entry: FileEntry) -> None:
        if not entry.cache_ok:
            return
        cache = self._cache
        cache[real] = entry
        self._cached_bytes += entry.size
        while cache and (self._cached_bytes > CACHE_TOTAL_MAX or len(cache) > CACHE_ENTRIES_MAX):
            _, old = cache.popitem(last=False)
            self._cached_bytes -= old.size

    def _evict(self, real: str) -> None:
        old = self._cache.pop(real, None)
        if old is not None:
            self._cached_bytes -= old.size

    def clear(self) -> None:
        self._cache.clear()
        self._cached_bytes = 0
        self._real_root = None

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def __len__(self) -> int:
        return len(self._cache)


# One store per Api object (shared by the web server and the WebSocket file verb).
_stores: weakref.WeakKeyDictionary[Any, StaticFiles] = weakref.WeakKeyDictionary()


def store(api: Any) -> StaticFiles:
    """The :class:`StaticFiles` for ``api.public_dir`` (one per api, cache shared)."""
    root = getattr(api, "public_dir", None)
    root_s = None if root is None else os.fspath(root)
    try:
        s = _stores.get(api)
    except TypeError:  # not weak-referenceable: an uncached store
        return StaticFiles(root_s)
    if s is None or s.root != root_s:
        s = StaticFiles(root_s)
        _stores[api] = s
    return s


def _ws_file_limit(api: Any) -> int:
    try:
        value = api.config["general"]["maxFileSize"]
    except (AttributeError, KeyError, TypeError):
        return DEFAULT_WS_FILE_MAX
    return int(value) if value else DEFAULT_WS_FILE_MAX


def read_public_file(api: Any, relpath: str, max_size: int | None = None) -> tuple[bytes, str, int] | None:
    """``(content, mime, last_modified_ms)`` of the file ``relpath`` names under
    ``api.public_dir`` (a directory → its index.html; leading slashes ignored), or
    None when there is no such file inside ``public/``, it cannot be read, or it is
    larger than ``max_size`` (default: config ``general.maxFileSize``).
    ``mime`` is the bare MIME type (``text/html``), as the ``file`` verb reports it."""
    if not isinstance(relpath, str):
        return None
    limit = _ws_file_limit(api) if max_size is None else max_size
    entry = store(api).lookup(relpath)
    if entry is None or entry.size > limit:
        return None
    try:
        data = entry.read(limit)
    except (OSError, FileTooLarge):
        return None
    return data, entry.mime, entry.mtime_ms
