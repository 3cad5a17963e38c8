"""The step vocabulary's own rules (``_ops``): defaults every op relies on, single flight, deadlines."""

from __future__ import annotations

import pytest

from livepeer.client import TimeoutError
from livepeer.client._ops import Call, Deadline, Flights, Parallel, Race


def test_step_defaults() -> None:
    # Ops leave these out: a changed default changes every call that does (docs/reliability.md).
    assert Call("GET", "https://o:1").timeout == 10.0
    assert Parallel([]).limit == 8
    race = Race(
        [], enough=lambda i, r: True, late=lambda i, r: None, drop=lambda i: None, timeout=1.0
    )
    assert (race.first, race.widen_after, race.background, race.limit) == (4, 0.1, 1, 8)


def test_flights_lead_follow_and_release() -> None:
    flights = Flights()
    assert flights.join("k") is None  # the first caller leads
    follower = flights.join("k")
    assert follower is not None
    assert not follower.is_set()
    flights.done("k")
    assert follower.is_set()  # followers wake when the leader is done
    assert flights.join("k") is None  # and the next caller leads a new flight
    flights.done("k")
    flights.done("never-started")  # releasing an unknown key is a no-op


def test_deadline_caps_and_refuses_when_spent() -> None:
    assert Deadline(30).cap(1.0) == 1.0
    assert Deadline(0.5).cap(0.1) == 0.1  # some time left: the smaller bound wins
    assert 0 < Deadline(0.5).cap(10.0) <= 0.5
    with pytest.raises(TimeoutError, match="deadline of 0s exceeded"):
        Deadline(0).cap(1.0)
    with pytest.raises(TimeoutError):
        Deadline(-1).cap(1.0)
