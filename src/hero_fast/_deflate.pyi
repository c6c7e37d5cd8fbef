"""Typed surface of the permessage-deflate helpers (see _deflate.pyx)."""

from collections.abc import Iterable
from typing import Final

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_MEM_LEVEL",
    "DeflateParams",
    "Deflater",
    "Inflater",
    "negotiate_deflate",
    "parse_extensions",
]

DEFAULT_LEVEL: Final[int]
DEFAULT_MEM_LEVEL: Final[int]

class DeflateParams:
    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_max_window_bits: int
    client_max_window_bits: int
    server_max_window_bits_sent: bool
    client_max_window_bits_sent: bool
    def __init__(
        self,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int = 15,
        client_max_window_bits: int = 15,
        server_max_window_bits_sent: bool = False,
        client_max_window_bits_sent: bool = False,
    ) -> None: ...
    @property
    def response(self) -> str: ...
    @classmethod
    def from_response(cls, header: str) -> DeflateParams: ...

class Inflater:
    wbits: int
    def __init__(self, wbits: int = 15) -> None: ...
    @property
    def allocated(self) -> bool: ...
    def decompress(self, data: bytes | bytearray | memoryview, limit: int, end: bool = True) -> bytes: ...

class Deflater:
    level: int
    wbits: int
    mem_level: int
    no_context: bool
    def __init__(self, level: int = 6, wbits: int = 15, mem_level: int = 8, no_context: bool = True) -> None: ...
    def compress_message(self, data: bytes | bytearray | memoryview) -> bytes: ...

def parse_extensions(values: str | Iterable[str]) -> list[tuple[str, list[tuple[str, str | None]]]]: ...
def negotiate_deflate(
    values: str | Iterable[str],
    server_no_context_takeover: bool = True,
    client_no_context_takeover: bool = True,
    server_max_window_bits: int = 15,
    client_max_window_bits: int = 15,
    max_offers: int = 32,
) -> DeflateParams | None: ...
