"""picows fan-out server (uvloop): every text frame any connection sends is re-sent to every
connection (the sender included), one ``transport.send`` per message per receiver: the
"per-message writes" baseline of the room fan-out benchmark.

Compatible with ``loadgen fanout`` without -J: receivers connect first and stay silent, the
sender's frames reach everyone; count them with -k MARK.

Usage: python bench/macro/peers/picows_fanout.py --port N [--host 127.0.0.1]
"""

from _cli import run_peer
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

CLIENTS: set = set()


class FanoutListener(WSListener):
    def on_ws_connected(self, transport: WSTransport):
        CLIENTS.add(transport)

    def on_ws_disconnected(self, transport: WSTransport):
        CLIENTS.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame):
        msg_type = frame.msg_type
        if msg_type == WSMsgType.TEXT:
            payload = frame.get_payload_as_bytes()
            for t in CLIENTS:
                t.send(WSMsgType.TEXT, payload)
        elif msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


async def main(host: str, port: int) -> None:
    server = await ws_create_server(lambda request: FanoutListener(), host, port)
    print(f"picows fan-out listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    run_peer(main)
