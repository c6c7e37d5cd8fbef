"""python-socketio peer (asyncio server on aiohttp + uvloop) with an echo event and rooms.

Events (all acknowledged, so a client can ``call`` them):
  echo  data           -> ack: data
  join  room           -> enters the room, ack: true
  say   {room, message} -> emits "chat" {room, message} to every member, ack: true

Driven by bench/macro/socketio_load.py (socket.io framing is not what the C loadgen speaks).

Usage: python bench/macro/peers/socketio_server.py --port N [--host 127.0.0.1]
"""
import asyncio

import socketio
from _cli import run_peer
from aiohttp import web

sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False,
                           cors_allowed_origins=None)


@sio.event
async def echo(sid, data):
    return data


@sio.event
async def join(sid, room):
    await sio.enter_room(sid, room)
    return True


@sio.event
async def say(sid, data):
    await sio.emit("chat", data, room=data["room"])
    return True


async def main(host: str, port: int) -> None:
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    print(f"python-socketio listening on {host}:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    run_peer(main)
