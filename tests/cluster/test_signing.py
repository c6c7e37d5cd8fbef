"""Signed bus messages (``hero_fast.cluster.signing``), without Redis."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hero_fast.cluster.signing import HEADER_SIZE, ReplayGuard, SignatureError, Signer

KEY = "k" * 16 + "-current"
OLD = "o" * 16 + "-previous"
CH = b"hf:r:defaultRoom"
BODY = b'{"k":"say","o":"abcd","p":{"message":"hi"}}'


def refused(counter: str, fn: object, *args: object) -> None:
    with pytest.raises(SignatureError) as info:
        fn(*args)  # type: ignore[operator]
    assert info.value.counter == counter, info.value


def test_seal_and_open_round_trip() -> None:
    signer = Signer(KEY)
    data = signer.seal(CH, BODY)
    assert len(data) == HEADER_SIZE + len(BODY) and data.startswith(b"HF1.") and data.endswith(BODY)
    body, t, q = Signer(KEY).open(CH, data)
    assert body == BODY and q == 1 and abs(t - time.time() * 1000) < 5000
    assert signer.open(CH, signer.seal(CH, BODY))[2] == 2  # one sequence per signer


def test_without_a_secret_messages_are_bare_and_signed_ones_refused() -> None:
    plain = Signer(None)
    assert not plain.enabled and plain.seal(CH, BODY) == BODY
    assert plain.open(CH, BODY) == (BODY, 0, 0)
    refused("invalid", plain.open, CH, Signer(KEY).seal(CH, BODY))


def test_unsigned_and_foreign_keys_are_refused() -> None:
    signer = Signer(KEY)
    refused("unsigned", signer.open, CH, BODY)
    refused("bad_signature", signer.open, CH, Signer("x" * 16).seal(CH, BODY))
    refused("bad_signature", signer.open, CH, b"HF1." + b"0" * 64)  # too short for a header


def test_a_message_is_bound_to_its_channel_and_every_byte_counts() -> None:
    signer = Signer(KEY)
    data = signer.seal(CH, BODY)
    refused("bad_signature", signer.open, b"hf:r:anotherRoom", data)  # moved into another room
    for i in range(4, len(data)):  # flip any byte after the magic: mac, time, sequence, body
        tampered = bytearray(data)
        tampered[i] ^= 0x01
        with pytest.raises(SignatureError):
            signer.open(CH, bytes(tampered))


def test_rotation_accepts_the_previous_key_and_signs_with_the_current() -> None:
    rotating = Signer(KEY, previous=OLD)
    old_nodes = Signer(OLD)
    assert rotating.open(CH, old_nodes.seal(CH, BODY))[0] == BODY
    assert Signer(OLD, previous=KEY).open(CH, rotating.seal(CH, BODY))[0] == BODY  # first step of a roll
    refused("bad_signature", old_nodes.open, CH, rotating.seal(CH, BODY))  # old nodes cannot check the new key


def test_replay_guard_refuses_old_future_and_repeated_messages() -> None:
    guard = ReplayGuard(max_age_ms=1000)
    now = int(time.time() * 1000)
    guard.check("a", now, 5)
    refused("replayed", guard.check, "a", now, 5)  # the same message again
    refused("replayed", guard.check, "a", now, 4)  # an older one
    guard.check("a", now, 9)  # gaps are fine: a node sees only the channels it subscribes to
    guard.check("b", now, 1)  # sequences are per sender
    refused("replayed", guard.check, "c", now - 5000, 1)  # too old
    refused("replayed", guard.check, "c", now + 5000, 1)  # from the future
    guard.check("c", now - 500, 1)


def test_replay_guard_forgets_silent_senders(monkeypatch: pytest.MonkeyPatch) -> None:
    guard = ReplayGuard(max_age_ms=1000)
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    now = int(time.time() * 1000)
    for i in range(100):
        guard.check(f"node{i}", now, 1)
    clock[0] += 2.5  # over 2 * max_age later: what they could replay is refused by its age
    guard.check("fresh", now, 1)
    assert list(guard._last) == ["fresh"]


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_signature_error(data: bytes) -> None:
    for candidate in (data, b"HF1." + data):
        try:
            Signer(KEY).open(CH, candidate)
        except SignatureError:
            pass
