"""Echo server for conformance and benchmark runs.

``python -m hero_fast.echo --host 127.0.0.1 --port N`` echoes every text and
binary message on any path. Limits default high enough for the Autobahn
suite's 16 MiB messages. permessage-deflate is negotiated with clients that offer
it (Autobahn cases 12 and 13); ``--no-deflate`` turns it off, ``--context-takeover``
lets clients keep the server's compression context (a compressor per connection).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from hero_fast._transport import Connection, Options, serve

__all__ = ["EchoHandler", "main"]


class EchoHandler:
    """Sends every message back on the connection it came from, as it came: the
    payload bytes, never decoded to ``str``."""

    def on_data(self, conn: Connection, payload: bytes, is_text: bool) -> None:
        conn.send(payload, is_text)


async def _run(host: str, port: int, options: Options) -> None:
    server = await serve(EchoHandler(), host, port, options=options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"hero-fast echo listening on ws://{host}:{server.port}/", flush=True)
    await stop.wait()
    await server.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hero_fast.echo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--max-message-size", type=int, default=64 << 20)
    parser.add_argument("--max-fragments", type=int, default=1 << 20)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--no-deflate", action="store_true", help="do not negotiate permessage-deflate")
    parser.add_argument("--context-takeover", action="store_true",
                        help="do not ask for server/client_no_context_takeover")
    args = parser.parse_args(argv)
    options = Options(max_message_size=args.max_message_size, max_fragments=args.max_fragments,
                      deflate=not args.no_deflate,
                      deflate_server_no_context_takeover=not args.context_takeover,
                      deflate_client_no_context_takeover=not args.context_takeover,
                      max_pings_per_second=0, coalesce_pongs=False)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(_run(args.host, args.port, options))
    else:
        asyncio.run(_run(args.host, args.port, options))


if __name__ == "__main__":
    main()
