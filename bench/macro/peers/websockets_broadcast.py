"""websockets (asyncio implementation) fan-out server on uvloop using ``broadcast()``: every
text message any connection sends goes to every connection (the sender included).

Compatible with ``loadgen fanout`` without -J (see picows_fanout.py).

Usage: python bench/macro/peers/websockets_broadcast.py --port N [--host 127.0.0.1]
"""

from _cli import run_peer
from websockets.asyncio.server import broadcast, serve

CLIENTS: set = set()


async def handler(ws):
    CLIENTS.add(ws)
    try:
        async for message in ws:
            if isinstance(message, str):
                broadcast(CLIENTS, message)
    finally:
        CLIENTS.discard(ws)


async def main(host: str, port: int) -> None:
    async with serve(handler, host, port, ping_interval=None, compression=None,
                     max_size=64 * 1024 * 1024) as server:
        print(f"websockets broadcast listening on {host}:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    run_peer(main)
