"""aiohttp web server echo (any path) on uvloop.

Usage: python bench/macro/peers/aiohttp_echo.py --port N [--host 127.0.0.1]
"""
import argparse

import uvloop
from aiohttp import WSMsgType, web


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", ws_handler)
    print(f"aiohttp echo listening on {args.host}:{args.port}", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, shutdown_timeout=1.0,
                access_log=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
