"""Typed surface of the sans-I/O WebSocket codec (see _core.pyx)."""

from collections.abc import Sequence
from typing import Any, Final

from hero_fast._deflate import DeflateParams as DeflateParams
from hero_fast._deflate import negotiate_deflate as negotiate_deflate

__all__ = [
    "DEFAULT_COMPRESS_MIN",
    "DEFAULT_MAX_FRAGMENTS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "OPCODES",
    "PROTOCOL_ERRORS",
    "Codec",
    "DeflateParams",
    "HandshakeError",
    "Sink",
    "accept_key",
    "build_accept_response",
    "build_http_response",
    "check_upgrade_request",
    "encode_close",
    "encode_frame",
    "is_valid_close_code",
    "negotiate_deflate",
]

DEFAULT_MAX_MESSAGE_SIZE: Final[int]
DEFAULT_MAX_FRAGMENTS: Final[int]
DEFAULT_COMPRESS_MIN: Final[int]
OPCODES: Final[dict[str, int]]
PROTOCOL_ERRORS: Final[dict[str, tuple[int, str]]]

Event = tuple[Any, ...]

def is_valid_close_code(code: int) -> bool: ...
def _apply_mask(data: bytearray | memoryview, key: bytes, phase: int = 0) -> None: ...
def encode_frame(
    opcode: int,
    payload: str | bytes | bytearray | memoryview,
    fin: bool = True,
    mask: bool = False,
    rsv: int = 0,
    compress: int = 0,
) -> bytes: ...
def encode_close(code: int = 1000, reason: str = "", mask: bool = False) -> bytes: ...

class Sink:
    """Receives decoded events; subclass in Cython to override the callbacks."""

class Codec:
    is_client: bool
    max_message_size: int
    max_fragments: int
    allowed_rsv: int
    deflate: bool
    compress_min: int
    frames_done: int
    auto_pong: bool
    msg_budget: int
    ping_budget: int
    @property
    def throttled(self) -> int: ...
    state: int
    close_code: int
    close_reason: str | None
    error: str | None
    def __init__(
        self,
        is_client: bool = False,
        max_message_size: int = ...,
        max_fragments: int = ...,
        sink: Sink | None = None,
    ) -> None: ...
    def enable_deflate(
        self, params: DeflateParams, level: int = 6, mem_level: int = 8, min_size: int = ...
    ) -> None: ...
    @property
    def inflater_allocated(self) -> bool: ...
    @property
    def compressor_shared(self) -> bool | None: ...
    def get_buffer(self, sizehint: int = -1) -> memoryview: ...
    def buffer_updated(self, nbytes: int) -> list[Event] | None: ...
    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event] | None: ...
    def resume(self) -> list[Event] | None: ...
    def buffered(self) -> int: ...
    @property
    def buffer_capacity(self) -> int: ...
    @property
    def read_size(self) -> int: ...
    def trim(self) -> bool: ...
    def take_unparsed(self) -> bytes: ...
    def data_to_send(self) -> bytes: ...
    def encode(self, opcode: int, payload: str | bytes, fin: bool = True) -> bytes: ...
    def send_message(self, payload: str | bytes | bytearray | memoryview) -> bytes: ...
    def close(self, code: int = 1000, reason: str = "") -> bytes: ...

class HandshakeError(Exception):
    status: int
    reason: str
    headers: list[tuple[str, str]]
    def __init__(self, status: int, reason: str, headers: Sequence[tuple[str, str]] = ()) -> None: ...

def accept_key(key: str | bytes) -> str: ...
def check_upgrade_request(
    method: str, http_version: str, headers: Sequence[tuple[str, str]]
) -> tuple[str, list[str], list[str]]: ...
def build_http_response(
    status: int, headers: Sequence[tuple[str, str]] = (), body: bytes = b"", reason: str | None = None
) -> bytes: ...
def build_accept_response(
    key: str, subprotocol: str | None = None, extra_headers: Sequence[tuple[str, str]] = ()
) -> bytes: ...
