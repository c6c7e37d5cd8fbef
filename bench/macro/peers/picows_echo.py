"""picows echo server (uvloop): one transport.send per received frame.

Usage: python bench/macro/peers/picows_echo.py --port N [--host 127.0.0.1]
"""

from _cli import run_peer
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server


class EchoListener(WSListener):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame):
        msg_type = frame.msg_type
        if msg_type == WSMsgType.TEXT or msg_type == WSMsgType.BINARY:
            transport.send(msg_type, frame.get_payload_as_bytes())
        elif msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


async def main(host: str, port: int) -> None:
    server = await ws_create_server(lambda request: EchoListener(), host, port)
    print(f"picows echo listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    run_peer(main)
