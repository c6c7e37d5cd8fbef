"""Abuse limits of the engine, each answered with a close code or an HTTP error and
counted in ``server.counters``: connections in total and per address (503),
messages and pings per second (1008, pongs coalesced), the per-frame read
deadline (1008), fragment and buffered-chunk bounds."""

from __future__ import annotations

import asyncio
import struct

from _nethelpers import (
    close_code,
    mask_frame,
    open_raw,
    read_frame,
    read_response,
    read_to_eof,
    serving,
    upgrade_request,
    wait_until,
    ws_raw,
)

from hero_fast._transport import Options
from hero_fast.echo import EchoHandler

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def test_options_defaults_are_documented_values():
    o = Options()
    assert (o.max_connections, o.max_connections_per_ip, o.max_messages_per_second) == (0, 0, 0)
    assert (o.max_pings_per_second, o.frame_timeout, o.coalesce_pongs) == (10, 30.0, True)
    assert (o.rate_limit_policy, o.trusted_proxies) == ("throttle", ())
    assert (o.deflate, o.deflate_server_no_context_takeover, o.deflate_client_no_context_takeover) == (
        True, True, True)
    assert (o.deflate_server_max_window_bits, o.deflate_client_max_window_bits) == (15, 12)
    assert (o.deflate_level, o.deflate_mem_level, o.deflate_min_size) == (6, 8, 128)
    for bad in ({"deflate_server_max_window_bits": 8}, {"deflate_level": 10}, {"deflate_mem_level": 0},
                {"rate_limit_policy": "drop"}, {"trusted_proxies": "10.0.0.1"},
                {"trusted_proxies": ["not an address"]}):
        try:
            Options(**bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)


def test_total_connection_limit_answers_503(run):
    async def main():
        async with serving(EchoHandler(), max_connections=2) as server:
            r1, w1 = await ws_raw(server.port)
            _r2, w2 = await open_raw(server.port)  # an HTTP connection counts too
            await wait_until(lambda: server.accepted == 2)
            r3, w3 = await open_raw(server.port)
            w3.write(upgrade_request("/"))
            status, _, headers, body = await read_response(r3)
            assert (status, body) == (503, b"too many connections\n")
            assert headers["connection"] == "close" and headers["retry-after"] == "1"
            assert await read_to_eof(r3) == b""
            assert server.counters["connections_refused"] == 1
            # the accepted ones are unaffected, and a slot frees when one leaves
            w1.write(mask_frame(TEXT, "ok"))
            assert await read_frame(r1) == (True, TEXT, b"ok")
            w2.close()
            await wait_until(lambda: server.accepted == 1)
            r4, w4 = await ws_raw(server.port)
            w4.write(mask_frame(TEXT, "in"))
            assert await read_frame(r4) == (True, TEXT, b"in")

    run(main())


def test_per_ip_connection_limit_answers_503(run):
    async def main():
        async with serving(EchoHandler(), max_connections_per_ip=3) as server:
            conns = [await ws_raw(server.port) for _ in range(3)]
            assert server.ip_counts == {"127.0.0.1": 3}
            r, w = await open_raw(server.port)
            w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, _, body = await read_response(r)
            assert (status, body) == (503, b"too many connections from your address\n")
            assert server.counters["connections_refused_per_ip"] == 1
            for _, writer in conns:
                writer.close()
            await wait_until(lambda: not server.ip_counts and server.accepted == 0)

    run(main())


def test_message_rate_limit_closes_1008_under_the_close_policy(run):
    async def main():
        async with serving(EchoHandler(), max_messages_per_second=5, rate_limit_policy="close") as server:
            reader, writer = await ws_raw(server.port)
            writer.write(b"".join(mask_frame(TEXT, str(i)) for i in range(30)))
            got = []
            while True:
                _fin, op, payload = await read_frame(reader)
                if op == CLOSE:
                    break
                got.append(payload)
            assert got == [str(i).encode() for i in range(10)]  # the bucket: twice the rate
            assert (close_code(payload), payload[2:]) == (1008, b"rate limit")
            assert server.counters["rate_limited"] == 1

    run(main())


def test_message_rate_refills_over_time(run):
    async def main():
        async with serving(EchoHandler(), max_messages_per_second=50, tick=0.05) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(b"".join(mask_frame(TEXT, "m") for _ in range(100)))  # the whole bucket
            for _ in range(100):
                assert (await read_frame(reader))[1] == TEXT
            await asyncio.sleep(0.6)  # ~30 tokens back
            writer.write(b"".join(mask_frame(TEXT, "n") for _ in range(25)))
            for _ in range(25):
                assert (await read_frame(reader))[1] == TEXT
            assert server.counters["rate_limited"] == 0

    run(main())


def test_ping_flood_closes_1008_under_the_close_policy(run):
    async def main():
        # default: 10 pings/s, bucket 20
        async with serving(EchoHandler(), rate_limit_policy="close") as server:
            reader, writer = await ws_raw(server.port)
            writer.write(b"".join(mask_frame(PING, b"%d" % i) for i in range(100)))
            frames = []
            while True:
                f = await read_frame(reader)
                frames.append(f)
                if f[1] == CLOSE:
                    break
            assert close_code(frames[-1][2]) == 1008 and frames[-1][2][2:] == b"too many pings"
            assert len(frames) <= 2  # at most one coalesced pong before the close
            assert server.counters["ping_flood"] == 1

    run(main())


def test_pings_in_one_batch_get_one_pong_with_the_last_payload(run):
    async def main():
        async with serving(EchoHandler()) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(b"".join(mask_frame(PING, b"p%d" % i) for i in range(5)) + mask_frame(TEXT, "after"))
            assert await read_frame(reader) == (True, PONG, b"p4")
            assert await read_frame(reader) == (True, TEXT, b"after")
            # a message between pings keeps the order: pong, echo, pong
            writer.write(mask_frame(PING, b"a") + mask_frame(TEXT, "m") + mask_frame(PING, b"b"))
            assert [await read_frame(reader) for _ in range(3)] == [
                (True, PONG, b"a"), (True, TEXT, b"m"), (True, PONG, b"b")]
            assert server.counters["ping_flood"] == 0

    run(main())


def test_pongs_not_coalesced_when_turned_off(run):
    async def main():
        async with serving(EchoHandler(), coalesce_pongs=False) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(b"".join(mask_frame(PING, b"p%d" % i) for i in range(5)))
            assert [await read_frame(reader) for _ in range(5)] == [(True, PONG, b"p%d" % i) for i in range(5)]

    run(main())


def test_frame_trickled_in_past_the_read_deadline_closes_1008(run):
    async def main():
        async with serving(EchoHandler(), frame_timeout=0.3, tick=0.05) as server:
            reader, writer = await ws_raw(server.port)
            frame = mask_frame(BINARY, b"x" * 1000)
            writer.write(frame[:20])
            for i in range(20, 60):
                await asyncio.sleep(0.02)
                writer.write(frame[i : i + 1])  # alive, but far too slow
            _fin, op, payload = await asyncio.wait_for(read_frame(reader), 3)
            assert (op, close_code(payload), payload[2:]) == (CLOSE, 1008, b"frame read timeout")
            assert server.counters["frame_timeouts"] == 1

    run(main())


def test_frames_arriving_steadily_never_hit_the_deadline(run):
    async def main():
        async with serving(EchoHandler(), frame_timeout=0.3, tick=0.05) as server:
            reader, writer = await ws_raw(server.port)
            for _ in range(8):  # each frame completes quickly; the gaps between are idle time
                writer.write(mask_frame(TEXT, "x"))
                assert await read_frame(reader) == (True, TEXT, b"x")
                await asyncio.sleep(0.1)
            assert server.counters["frame_timeouts"] == 0

    run(main())


def test_partial_header_counts_as_a_frame_in_progress(run):
    async def main():
        async with serving(EchoHandler(), frame_timeout=0.2, tick=0.05) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(bytes([0x82, 0xFF]))  # 64-bit length follows... never
            _fin, op, payload = await asyncio.wait_for(read_frame(reader), 3)
            assert (op, close_code(payload)) == (CLOSE, 1008)

    run(main())


def test_zero_length_fragments_are_bounded(run):
    async def main():
        async with serving(EchoHandler(), max_fragments=100) as server:
            reader, writer = await ws_raw(server.port)
            data = mask_frame(TEXT, b"", fin=False) + mask_frame(CONT, b"", fin=False) * 3000
            writer.write(data)
            _fin, op, payload = await read_frame(reader)
            assert (op, close_code(payload)) == (CLOSE, 1009)
            assert server.counters["protocol_errors"] == 1

    run(main())


def test_http_body_trickled_in_tiny_segments(run):
    async def handle(request):
        from hero_fast._transport import Response

        return Response(200, [], b"%d" % len(request.body))

    class H:
        on_http = staticmethod(handle)

    async def main():
        async with serving(H()) as server:
            reader, writer = await open_raw(server.port)
            body = b"b" * 3000
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n")
            for i in range(0, len(body), 7):
                writer.write(body[i : i + 7])
                await writer.drain()
            status, _, _, got = await read_response(reader)
            assert (status, got) == (200, b"3000")

    run(main())


def test_64_bit_length_top_bit(run):
    async def main():
        async with serving(EchoHandler()) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 63) + b"\x00" * 4)
            _fin, op, payload = await read_frame(reader)
            assert (op, close_code(payload)) == (CLOSE, 1002)

    run(main())


def test_message_rate_over_the_limit_is_throttled_not_closed(run):
    """The default policy: a client sending far above max_messages_per_second gets every
    reply, in order, is never closed, and is slowed to about the rate (its frames wait
    unparsed, TCP backpressure does the rest); a bystander's round trip is unaffected."""
    rate, n = 200, 800  # the bucket (2 x rate) passes at once, the rest at `rate` per second

    async def main():
        loop = asyncio.get_running_loop()
        async with serving(EchoHandler(), max_messages_per_second=rate) as server:
            reader, writer = await ws_raw(server.port)
            by_reader, by_writer = await ws_raw(server.port)
            started = loop.time()
            writer.write(b"".join(mask_frame(TEXT, str(i)) for i in range(n)))
            got = []

            async def collect():
                while len(got) < n:
                    _fin, op, payload = await read_frame(reader)
                    assert op == TEXT, (op, payload)
                    got.append(payload)

            collecting = asyncio.ensure_future(collect())
            await wait_until(lambda: server.counters["throttled"] >= 1)
            worst = 0.0
            for i in range(5):  # the bystander while the flooder is throttled
                t0 = loop.time()
                by_writer.write(mask_frame(TEXT, f"b{i}"))
                assert await read_frame(by_reader) == (True, TEXT, f"b{i}".encode())
                worst = max(worst, loop.time() - t0)
                await asyncio.sleep(0.05)
            await asyncio.wait_for(collecting, 10)
            elapsed = loop.time() - started
            assert got == [str(i).encode() for i in range(n)]
            # (n - 2 * rate) / rate = 2 s at the limit; never faster than that
            assert elapsed >= 0.9 * (n - 2 * rate) / rate, elapsed
            assert elapsed < 3 * (n - 2 * rate) / rate + 2, elapsed
            assert worst < 1.0, worst  # a throttled peer would hold it for seconds
            assert server.counters["rate_limited"] == 0
            writer.write(mask_frame(TEXT, "still open"))
            assert await read_frame(reader) == (True, TEXT, b"still open")

    run(main(), timeout=30)


def test_ping_flood_is_throttled_not_closed(run):
    async def main():
        async with serving(EchoHandler(), max_pings_per_second=50) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(b"".join(mask_frame(PING, b"%d" % i) for i in range(150)) + mask_frame(TEXT, "after"))
            frames = []
            while True:
                f = await read_frame(reader)
                assert f[1] in (PONG, TEXT), f
                frames.append(f)
                if f[1] == TEXT:
                    break
            assert frames[-1] == (True, TEXT, b"after")
            assert frames[-2] == (True, PONG, b"149")  # the last ping is answered before it
            assert server.counters["throttled"] >= 1 and server.counters["ping_flood"] == 0

    run(main(), timeout=30)


def test_rfc6455_7_1_2_closing_a_throttled_connection_reads_the_peers_close(run):
    """A throttled connection is not being read; when the server closes it (here:
    shutdown, 1001) the frames still waiting are skipped and the peer's close frame
    is read, so TCP ends at once, not after close_timeout."""

    async def main():
        # 0.2/s: the bucket holds 0.4 tokens, the first message already waits (~3 s)
        async with serving(EchoHandler(), max_messages_per_second=0.2, close_timeout=5.0) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(b"".join(mask_frame(TEXT, "m") for _ in range(5)))
            await wait_until(lambda: server.counters["throttled"] == 1)
            loop = asyncio.get_running_loop()
            started = loop.time()
            closing = asyncio.ensure_future(server.shutdown(1001, "going away", timeout=4.0))
            while (frame := await read_frame(reader))[1] != CLOSE:
                assert frame[1] == TEXT
            assert close_code(frame[2]) == 1001
            writer.write(mask_frame(CLOSE, b"\x03\xe9"))
            assert await read_to_eof(reader, timeout=3) == b""
            await closing
            assert loop.time() - started < 2
            assert server.counters["close_timeouts"] == 0

    run(main(), timeout=30)
