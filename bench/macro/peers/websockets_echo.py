"""websockets (asyncio implementation) echo server on uvloop.

Usage: python bench/macro/peers/websockets_echo.py --port N [--host 127.0.0.1]
"""

from _cli import run_peer
from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main(host: str, port: int) -> None:
    # No keepalive pings and no compression: measure the plain echo path.
    async with serve(echo, host, port, ping_interval=None, compression=None,
                     max_size=64 * 1024 * 1024) as server:
        print(f"websockets echo listening on {host}:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    run_peer(main)
