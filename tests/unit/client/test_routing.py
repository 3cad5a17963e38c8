"""Routing never changes the billing model silently (issue 15.4): BYOC first, ``route=`` to choose."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livepeer.client import Gateway

Start = Callable[[int], list[Any]]


def _both(orchs: list[Any], price: int = 7) -> None:
    """Every orchestrator offers ``paid-app`` as a BYOC capability *and* as a fixed-price app."""
    for o in orchs:
        o.capabilities = {"paid-app": 2}
        o.runners = [
            {
                "app": "paid-app",
                "url": "/apps/paid-app/app",
                "mode": "single-shot",
                "capacity_available": 1,
                "price_info": {"price": price, "currency": "wei", "unit": "fixed"},
            }
        ]
        o.app_price = price


def test_default_is_byoc_and_route_app_uses_the_app(fake_orchs: Start, fake_signer: Any) -> None:
    a, b = fake_orchs(2)
    _both([a, b])
    with Gateway(orch_url=[a.url, b.url], signer_url=fake_signer.url) as gw:
        assert gw.run("paid-app", input={"text": "ab"}) == {"original": "ab", "reversed": "ba"}
        assert a.request_calls + b.request_calls == 1
        assert a.app_calls + b.app_calls == []
        out = gw.run("paid-app", input={"q": 1}, route="app")
    assert out == {"echo": {"q": 1}, "path": "/apps/paid-app/app"}
    assert a.request_calls + b.request_calls == 1  # no second BYOC call


def test_a_signer_refresh_keeps_the_route(fake_orchs: Start, fake_signer: Any) -> None:
    """A 480 from the signer re-probes the orchestrator; the re-probe used to run the default
    (BYOC first) selection and could finish an app call as a BYOC job."""
    a, b = fake_orchs(2)
    _both([a, b])
    fake_signer.payment_statuses = [480]
    with Gateway(orch_url=[a.url, b.url], signer_url=fake_signer.url) as gw:
        out = gw.run("paid-app", input={"q": 2}, route="app")
    assert out == {"echo": {"q": 2}, "path": "/apps/paid-app/app"}
    assert a.request_calls + b.request_calls == 0
