"""hero_fast.client_recovery: the backoff policy and the recovery bookkeeping of the client."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hero_fast.client_recovery import ReconnectPolicy, RecoveryState

EPOCH = "5f0c2e9a1d3b4c77"


def chat(room: str, offset: int, epoch: str = EPOCH) -> dict[str, Any]:
    return {"message": offset, "room": room, "from": "x", "context": "user", "offset": offset, "epoch": epoch}


def test_backoff_grows_within_bounds_with_jitter() -> None:
    policy = ReconnectPolicy(min=0.1, max=1.0, factor=2.0)
    bounds = {1: (0.1, 0.125), 2: (0.15, 0.25), 3: (0.3, 0.5), 4: (0.6, 1.0), 5: (1.0, 1.0), 200: (1.0, 1.0)}
    for attempt, (low, high) in bounds.items():
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(low <= d <= high for d in delays), (attempt, min(delays), max(delays))
    assert len({policy.delay(2) for _ in range(50)}) > 10  # jittered
    assert ReconnectPolicy(min=1.0, max=1.0).delay(3) == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [{"min": -1}, {"min": 2, "max": 1}, {"factor": 0.5}, {"retries": 0}, {"jitter": 1.0}, {"jitter": -0.1}],
)
def test_policy_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ReconnectPolicy(**kwargs)


def test_welcome_token_and_the_recover_request() -> None:
    state = RecoveryState()
    assert state.welcomed({"welcome": "hi", "context": "api"}) is False and state.token is None
    assert state.welcomed({"welcome": "hi", "context": "api", "recovery": {"token": "t" * 64, "ttl": 1}}) is True
    state.joined("lobby", {"status": "OK", "data": True, "history": {"offset": 4, "epoch": EPOCH}})
    state.joined("plain", {"status": "OK", "data": True})
    assert state.is_new(chat("lobby", 5))
    assert state.is_new({"context": "alert", "pushSeq": 3})
    assert state.rooms == ["lobby", "plain"]
    assert state.recover_fields("old") == {
        "token": "old",
        "offsets": {"lobby": {"offset": 5, "epoch": EPOCH}},
        "pushSeq": 3,
    }
    state.left("lobby")
    assert state.recover_fields("old")["offsets"] == {} and state.rooms == ["plain"]


def test_duplicates_are_dropped_per_room_and_epoch() -> None:
    state = RecoveryState()
    assert [state.is_new(chat("a", n)) for n in (1, 2, 2, 1, 3)] == [True, True, False, False, True]
    assert state.is_new(chat("b", 1))  # another room, its own numbering
    assert state.is_new(chat("a", 1, epoch="another epoch"))  # the room's history was lost: new numbering
    assert not state.is_new(chat("a", 1, epoch="another epoch"))
    plain = {"message": "x", "room": "a", "from": "y", "context": "user"}
    assert state.is_new(plain) and state.is_new(plain)  # a room without history: nothing to compare


def test_pushes_are_dropped_by_push_seq() -> None:
    state = RecoveryState()
    assert [state.is_new({"context": "alert", "pushSeq": n}) for n in (1, 2, 2, 3, 1)] == [
        True, True, False, True, False,
    ]  # fmt: skip
    assert state.is_new({"context": "alert"})  # a broadcast carries no pushSeq
    assert state.is_new({"context": "response", "pushSeq": 1, "messageId": 1})  # never for responses


def test_a_roomadd_position_only_moves_forward_in_its_epoch() -> None:
    state = RecoveryState()
    assert state.is_new(chat("a", 7))
    state.joined("a", {"history": {"offset": 5, "epoch": EPOCH}})  # answered after message 7 arrived
    assert state.offsets["a"] == {"offset": 7, "epoch": EPOCH}
    state.joined("a", {"history": {"offset": 2, "epoch": "new"}})
    assert state.offsets["a"] == {"offset": 2, "epoch": "new"}


def test_the_recover_outcome() -> None:
    state = RecoveryState()
    state.token = "old"
    assert state.is_new({"context": "alert", "pushSeq": 4})
    data = {"recovered": True, "id": "c1", "rooms": ["a", "b"], "token": "new"}
    assert state.recovered(data) == {"recovered": True, "id": "c1", "rooms": ["a", "b"]}
    assert state.token == "new" and state.push_seq == 4 and state.rooms == ["a", "b"]
    expired = {"recovered": False, "reason": "expired", "id": "c2", "rooms": [], "token": "newer"}
    assert state.recovered(expired)["reason"] == "expired"
    assert state.token == "newer" and state.push_seq == 0  # a new connection id numbers its pushes anew


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(1, 30)), max_size=200))
def test_what_is_kept_is_new_and_in_order_per_room(arrivals: list[tuple[str, int]]) -> None:
    state = RecoveryState()
    kept: dict[str, list[int]] = {"a": [], "b": []}
    for room, offset in arrivals:
        if state.is_new(chat(room, offset)):
            kept[room].append(offset)
    for room in kept:
        assert kept[room] == sorted(set(kept[room]))  # strictly increasing: no duplicate, no going back
        arrived = [o for r, o in arrivals if r == room]
        assert kept[room][-1:] == ([max(arrived)] if arrived else [])  # the newest always gets through
