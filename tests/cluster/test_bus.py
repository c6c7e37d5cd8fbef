"""The bus decoder against malicious input (no Redis needed)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hero_fast.cluster import bus
from hero_fast.cluster.bus import CTL_KINDS, NODE_KINDS, ROOM_KINDS, BusError, decode, encode, say_prefix

CAP = 4096
ALL = ROOM_KINDS | NODE_KINDS | CTL_KINDS


def test_valid_messages_round_trip() -> None:
    assert decode(encode("say", o="ab12", p={"message": 1}), ROOM_KINDS, CAP) == (
        "say", {"k": "say", "o": "ab12", "p": {"message": 1}})
    assert decode(encode("send", o="ab12", c="conn-1", m=[1, 2]), NODE_KINDS, CAP)[1]["m"] == [1, 2]
    assert decode(encode("send", o="ab12", c="c", m=None), NODE_KINDS, CAP)[1]["m"] is None
    assert decode(encode("probe", o="ab12", s=7), NODE_KINDS, CAP)[0] == "probe"
    assert decode(encode("missed", o="ab12", ms=1500), ROOM_KINDS, CAP)[1]["ms"] == 1500
    assert decode(encode("roomAdd", o="ab12", r="lobby"), CTL_KINDS, CAP)[1]["r"] == "lobby"
    assert decode(encode("roomDestroy", o="ab12", r="x"), CTL_KINDS, CAP)[0] == "roomDestroy"


def test_say_built_by_concatenation_is_valid() -> None:
    body = orjson.dumps({"message": "hi \u2603", "room": "r", "from": "x", "context": "user", "sentAt": 1})
    data = say_prefix("0123456789abcdef") + body + b"}"
    kind, msg = decode(data, ROOM_KINDS, CAP)
    assert kind == "say" and msg["o"] == "0123456789abcdef" and msg["p"] == orjson.loads(body)
    with pytest.raises(ValueError):
        say_prefix('bad"id')


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not JSON"),
        (b"not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b'{"k": "say", "o": "ab", "p": {}', "not JSON"),  # truncated
        (b'{"k":"say","o":"ab","p":{}}\x00', "not JSON"),  # trailing bytes
        (b"[1,2,3]", "not a JSON object"),
        (b'"say"', "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"123", "not a JSON object"),
        (b"{}", "no kind"),
        (b'{"k": 5}', "no kind"),
        (b'{"k": null, "o": "a"}', "no kind"),
        (b'{"k": ["say"]}', "no kind"),
        (b'{"k": "__init__", "o": "a"}', "not allowed"),
        (b'{"k": "_on_send", "o": "a"}', "not allowed"),
        (b'{"k": "stop", "o": "a"}', "not allowed"),
        (b'{"k": "send", "o": "a", "c": "x", "m": 1}', "not allowed"),  # a node kind on a room channel
        (b'{"k": "roomDestroy", "o": "a", "r": "x"}', "not allowed"),
        (b'{"k": "say"}', "field 'o'"),
        (b'{"k": "say", "o": 1, "p": {}}', "field 'o'"),
        (b'{"k": "say", "o": "", "p": {}}', "field 'o'"),
        (b'{"k": "say", "o": "a b", "p": {}}', "field 'o'"),
        (b'{"k": "say", "o": "../../x", "p": {}}', "field 'o'"),
        (b'{"k": "say", "o": "' + b"a" * 65 + b'", "p": {}}', "field 'o'"),
        (b'{"k": "say", "o": "ab"}', "field 'p'"),
        (b'{"k": "say", "o": "ab", "p": "text"}', "field 'p'"),
        (b'{"k": "say", "o": "ab", "p": [1]}', "field 'p'"),
        (b'{"k": "say", "o": "ab", "p": null}', "field 'p'"),
        (b'{"k": "missed", "o": "ab"}', "field 'ms'"),
        (b'{"k": "missed", "o": "ab", "ms": "5"}', "field 'ms'"),
        (b'{"k": "missed", "o": "ab", "ms": -5}', "field 'ms'"),
        (b'{"k": "missed", "o": "ab", "ms": false}', "field 'ms'"),
    ],
)
def test_room_channel_refuses(data: bytes, reason: str) -> None:
    with pytest.raises(BusError, match=reason):
        decode(data, ROOM_KINDS, CAP)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"k": "say", "o": "ab", "p": {}}', "not allowed"),
        (b'{"k": "send", "o": "ab", "m": 1}', "field 'c'"),
        (b'{"k": "send", "o": "ab", "c": 5, "m": 1}', "field 'c'"),
        (b'{"k": "send", "o": "ab", "c": "", "m": 1}', "field 'c'"),
        (b'{"k": "send", "o": "ab", "c": "' + b"x" * 129 + b'", "m": 1}', "field 'c'"),
        (b'{"k": "send", "o": "ab", "c": "a\\u0000b", "m": 1}', "field 'c'"),
        (b'{"k": "send", "o": "ab", "c": "id"}', "field 'm'"),
        (b'{"k": "probe", "o": "ab", "s": "1"}', "field 's'"),
        (b'{"k": "probe", "o": "ab", "s": -1}', "field 's'"),
        (b'{"k": "probe", "o": "ab", "s": true}', "field 's'"),
        (b'{"k": "probe", "o": "ab", "s": 1.5}', "field 's'"),
    ],
)
def test_node_channel_refuses(data: bytes, reason: str) -> None:
    with pytest.raises(BusError, match=reason):
        decode(data, NODE_KINDS, CAP)


@pytest.mark.parametrize(
    "data",
    [
        b'{"k": "roomAdd", "o": "ab"}',
        b'{"k": "roomAdd", "o": "ab", "r": ""}',
        b'{"k": "roomAdd", "o": "ab", "r": 3}',
        b'{"k": "roomAdd", "o": "ab", "r": {"x": 1}}',
        b'{"k": "roomAdd", "o": "ab", "r": "' + b"r" * 1025 + b'"}',
    ],
)
def test_ctl_channel_refuses(data: bytes) -> None:
    with pytest.raises(BusError, match="field 'r'"):
        decode(data, CTL_KINDS, CAP)


def test_size_is_checked_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = orjson.loads
    monkeypatch.setattr(bus.orjson, "loads", lambda d: calls.append(1) or real(d))
    huge = b'{"k":"say","o":"ab","p":{"m":"' + b"x" * (10 * CAP) + b'"}}'
    with pytest.raises(BusError, match="over the 4096-byte cap"):
        decode(huge, ROOM_KINDS, CAP)
    assert calls == []
    ok = b'{"k":"say","o":"ab","p":{"m":"' + b"x" * (CAP - 40) + b'"}}'
    assert len(ok) <= CAP and decode(ok, ROOM_KINDS, CAP)[0] == "say"


def test_not_bytes_and_deep_nesting() -> None:
    for data in (None, "text", 5, ["message"], {"k": "say"}):
        with pytest.raises(BusError, match="not a byte string"):
            decode(data, ALL, CAP)
    deep = b'{"k":"say","o":"ab","p":' + b'{"a":' * 2000 + b"1" + b"}" * 2000 + b"}"
    with pytest.raises(BusError):
        decode(deep, ROOM_KINDS, 1 << 20)


def test_extra_fields_are_ignored_and_kind_is_case_sensitive() -> None:
    kind, msg = decode(b'{"k":"probe","o":"ab","s":1,"__class__":"x","extra":[1]}', NODE_KINDS, CAP)
    assert kind == "probe" and msg["s"] == 1
    with pytest.raises(BusError, match="not allowed"):
        decode(b'{"k":"PROBE","o":"ab","s":1}', NODE_KINDS, CAP)


def test_encode_refuses_what_decode_would() -> None:
    with pytest.raises(ValueError):
        encode("say", o="ab", p="not an object")
    with pytest.raises(ValueError):
        encode("probe", o="", s=1)
    with pytest.raises(KeyError):
        encode("nope", o="ab")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.from_regex(rb'\{"k":"(say|send|probe|roomAdd|roomDestroy)".*', fullmatch=True))
def test_arbitrary_bytes_never_raise_anything_but_bus_error(data: bytes) -> None:
    for allowed in (ROOM_KINDS, NODE_KINDS, CTL_KINDS):
        try:
            kind, msg = decode(data, allowed, CAP)
        except BusError:
            continue
        assert kind in allowed and isinstance(msg, dict)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
                    | st.text(),
                    lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=20),
       st.sampled_from(sorted(ALL)))
def test_arbitrary_json_objects_never_raise_anything_but_bus_error(value: object, kind: str) -> None:
    for fields in ({"k": kind, "o": value}, {"k": kind, "o": "ab", "p": value, "c": value, "m": value,
                                             "s": value, "r": value}):
        data = orjson.dumps(fields)
        for allowed in (ROOM_KINDS, NODE_KINDS, CTL_KINDS):
            try:
                decode(data, allowed, 1 << 16)
            except BusError:
                pass
