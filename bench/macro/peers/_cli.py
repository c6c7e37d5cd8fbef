"""The command line every peer server shares: --host (loopback by default), --port, and the
peer's own on/off flags, then the peer's `main(host=..., port=..., <flag>=...)` on uvloop."""
from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

import uvloop


def run_peer(main: Callable[..., Awaitable[None]], *flags: str) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    for flag in flags:
        ap.add_argument(flag, action="store_true")
    uvloop.run(main(**vars(ap.parse_args())))
