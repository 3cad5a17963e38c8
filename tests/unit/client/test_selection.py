from __future__ import annotations

import pytest

from livepeer.client import ConnectionError
from livepeer.client._ops import backoff, is_retryable_status
from livepeer.client._routes import Probe, safe_url, same_host
from livepeer.client._selection import Selector, rank
from livepeer.client._signer import needs_payment


def probe(
    url: str, *, ok: bool = True, price: float = 0, latency: float = 0.1, capacity: int | None = 1
) -> Probe:
    return Probe(
        url,
        "byoc",
        ok=ok,
        price=price,
        latency=latency,
        capacity=capacity,
        reason="" if ok else "down",
    )


def test_rank_health_then_price_then_latency() -> None:
    probes = [
        probe("a", price=1, latency=0.01, capacity=None),  # unknown capacity: after known-free ones
        probe("b", price=2, latency=0.01),
        probe("c", price=1, latency=0.5),
        probe("d", price=1, latency=0.2),
        probe("e", ok=False),
    ]
    usable, rejected = rank(probes, None)
    assert [p.url for p in usable] == ["d", "c", "b", "a"]
    assert [(r.orchestrator, r.reason) for r in rejected] == [("e", "down")]


def test_rank_max_price() -> None:
    usable, rejected = rank([probe("a", price=5), probe("b", price=50)], 10)
    assert [p.url for p in usable] == ["a"]
    assert rejected[0].orchestrator == "b"
    assert "max_price" in rejected[0].reason


def test_selector_cache_ttls() -> None:
    sel = Selector(ok_ttl=100, fail_ttl=0)
    ok = probe("a")
    sel.store(ok, "cap", None)
    assert sel._fresh(type(next(iter(sel._cache)))("a", "cap", None), ok.created) is ok
    sel.mark_failed(ok, "cap", None, "boom")
    # Failed entries expire immediately with fail_ttl=0.
    key = next(iter(sel._cache))
    assert sel._fresh(key, ok.created + 1) is None


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (200, False),
        (400, False),
        (401, False),
        (404, False),
        (408, True),
        (422, False),
        (429, True),
        (500, True),
        (503, True),
    ],
)
def test_retryable_statuses(status: int, retry: bool) -> None:
    assert is_retryable_status(status) is retry


def test_backoff_is_jittered_and_capped() -> None:
    for attempt in range(10):
        for _ in range(20):
            delay = backoff(attempt)
            assert 0.25 <= delay <= 8.0


def test_payment_threshold() -> None:
    assert not needs_payment(0, None)
    assert needs_payment(1, None)
    assert needs_payment(1, 119)
    assert not needs_payment(1, 120)


def test_urls_must_stay_on_the_orchestrator() -> None:
    assert same_host("https://a.orch.example/x", "https://orch.example:8935")
    assert not same_host("https://evil.example/x", "https://orch.example")
    assert (
        safe_url("/ai/trickle/x", "https://orch.example:1") == "https://orch.example:1/ai/trickle/x"
    )
    with pytest.raises(ConnectionError):
        safe_url("http://169.254.169.254/latest", "https://orch.example")
