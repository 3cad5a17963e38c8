from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from livepeer.client import Gateway, PaymentError, _selection

Start = Callable[[int], list[Any]]


def _runner(app: str, mode: str = "single-shot", price: int | None = None) -> dict[str, Any]:
    name = app.replace("/", "-")
    url = f"/apps/{name}/app" if mode == "single-shot" else f"/apps/{name}/session"
    r: dict[str, Any] = {"app": app, "url": url, "mode": mode, "capacity_available": 1}
    if price is not None:
        r["price_info"] = {"price": price, "currency": "wei", "unit": "fixed"}
    return r


def test_app_found_via_orchestrator_discovery(fake_orchs: Start) -> None:
    a, b = fake_orchs(2)  # two candidates, so the probe path runs
    for o in (a, b):
        o.capabilities = {}
        o.runners = [_runner("echo-app/v1")]
    with Gateway(orch_url=[a.url, b.url]) as gw:
        out = gw.run("echo-app", input={"x": 1})
    assert out == {"echo": {"x": 1}, "path": "/apps/echo-app-v1/app"}


def test_paid_app_answers_the_402_challenge(fake_orchs: Start, fake_signer: Any) -> None:
    a, b = fake_orchs(2)
    for o in (a, b):
        o.capabilities = {}
        o.runners = [_runner("paid-app", price=7)]
        o.app_price = 7
    with Gateway(orch_url=[a.url, b.url], signer_url=fake_signer.url) as gw:
        out = gw.run("paid-app", input={"q": "hi"})
    assert out == {"echo": {"q": "hi"}, "path": "/apps/paid-app/app"}
    calls = a.app_calls + b.app_calls
    assert [c["payment"] is None for c in calls] == [True, False]
    assert calls[0]["payer"] == "0x" + "Ab" * 20
    body = fake_signer.payment_bodies[0]
    assert body["type"] == "fixed"
    assert body["ManifestID"] == "m-1"
    assert body["app"] == "paid-app"
    assert body["maxPrice"]["price"] == pytest.approx(7 * 1.012)
    assert base64.b64decode(body["orchestrator"])  # the challenge's payment_params, passed on


def test_paid_app_without_signer_is_payment_error(fake_orchs: Start) -> None:
    a, b = fake_orchs(2)
    for o in (a, b):
        o.capabilities = {}
        o.runners = [_runner("paid-app", price=7)]
        o.app_price = 7
    gw = Gateway(orch_url=[a.url, b.url])
    with gw, pytest.raises(PaymentError, match="402"):
        gw.run("paid-app", input={})


def test_persistent_runner_session_call_stop(
    fake_orchs: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timing-free: probes get a bound no busy machine reaches, and the assertions hold whichever
    # orchestrator serves (under load a first attempt may fail over; its session must still be stopped).
    monkeypatch.setattr(_selection, "PROBE_TIMEOUT", 60.0)
    a, b = fake_orchs(2)
    for o in (a, b):
        o.capabilities = {}
        o.runners = [_runner("sess-app", mode="persistent")]
    with Gateway(orch_url=[a.url, b.url], timeout=300) as gw:
        out = gw.run("sess-app", input={"n": 2})
    assert out == {"echo": {"n": 2}, "path": "/apps/sess-app/session/s1/app/"}
    assert (a.stops, b.stops) == (a.sessions, b.sessions)  # every session opened is stopped once
    served = [o for o in (a, b) if o.app_calls]
    assert len(served) == 1
    assert len(served[0].app_calls) == 1
    assert served[0].sessions >= 1


def test_runner_urls_on_other_hosts_are_refused(fake_orchs: Start) -> None:
    a, b = fake_orchs(2)
    from livepeer.client import NoOrchestratorError

    for o in (a, b):
        o.capabilities = {}
        o.runners = [{"app": "evil", "url": "@evil.example/x", "capacity_available": 1}]
    gw = Gateway(orch_url=[a.url, b.url], max_retries=0)
    with gw, pytest.raises(NoOrchestratorError) as info:
        gw.run("evil", input={})
    assert "another host" in str(info.value)
