"""Live-runner apps: ``GET /discovery`` lists runners; calls go through ``/apps/{runner}/…`` with the
402 payment challenge answered by the signer (PROTOCOL §10)."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from livepeer.client._errors import ConnectionError, LivepeerError, PaymentError, SignerError
from livepeer.client._http import Call, Op, Reply
from livepeer.client._routes import Probe, Request, body_fields, safe_url
from livepeer.client._signer import ZERO_ADDRESS, Identity, PaymentTokens, Signer

__all__ = ["attempt", "find_runner", "probe_call", "probe_from_runner", "read_probe"]

# py-1.0 allows this much drift over the discovered price when asking the signer to pay.
PRICE_SLACK = 1.012
_BILLING = {
    "seconds": "live",
    "hour": "live",
    "720p-pixel-seconds": "lv2v",
    "720p": "lv2v",
    "fixed": "fixed",
}


def find_runner(
    runners: tuple[Mapping[str, Any], ...] | list[Mapping[str, Any]],
    capability: str,
    model: str | None,
) -> Mapping[str, Any] | None:
    """A runner whose ``app`` is the capability (``pipeline/model`` by convention)."""
    best: Mapping[str, Any] | None = None
    for r in runners:
        app = r.get("app")
        if not isinstance(app, str) or not isinstance(r.get("url"), str):
            continue
        exact = app == capability or (model is not None and app == f"{capability}/{model}")
        prefix = model is None and app.startswith(capability + "/")
        if exact or prefix:
            avail = r.get("capacity_available")
            if best is None or (isinstance(avail, int) and avail > 0):
                best = r
    return best


def names_exactly(runner: Mapping[str, Any], capability: str, model: str | None) -> bool:
    """The caller named this app itself (``pipeline/model``, or the pipeline with ``model=``)."""
    app = runner.get("app")
    return app == capability or (model is not None and app == f"{capability}/{model}")


def probe_call(url: str, timeout: float) -> Call:
    return Call("GET", url + "/discovery", timeout=timeout, limit=1 << 20)


def probe_from_runner(url: str, runner: Mapping[str, Any], latency: float = 0.0) -> Probe:
    avail = runner.get("capacity_available")
    capacity = avail if isinstance(avail, int) else None
    price_info = runner.get("price_info") or {}
    price = price_info.get("price") if isinstance(price_info, dict) else None
    try:
        runner_url = safe_url(str(runner["url"]), url)
    except ConnectionError as exc:
        return Probe(url, "apps", ok=False, reason=str(exc), offers=True)
    ok = capacity is None or capacity > 0
    return Probe(
        url,
        "apps",
        ok=ok,
        reason="" if ok else f"runner {runner.get('app')} has no capacity",
        price=float(price) if isinstance(price, (int, float)) else 0.0,
        latency=latency,
        capacity=capacity,
        offers=True,
        runner={**runner, "url": runner_url},
    )


def read_probe(
    url: str, capability: str, model: str | None, result: Reply | LivepeerError
) -> Probe | None:
    """None when the orchestrator has no runner for the capability."""
    if isinstance(result, LivepeerError) or result.status != 200:
        return None
    try:
        data = json.loads(result.body)
    except ValueError:
        return None
    runners: list[Mapping[str, Any]] = []
    if isinstance(data, list):
        for entry in data:
            if isinstance(entry, dict) and isinstance(entry.get("runners"), list):
                runners.extend(r for r in entry["runners"] if isinstance(r, dict))
    runner = find_runner(runners, capability, model)
    return probe_from_runner(url, runner, result.elapsed) if runner else None


@dataclass(frozen=True)
class PaymentTerms:
    """How the signer is asked to pay a runner: billing type, price ceiling, app label."""

    billing: str
    max_price: Mapping[str, object] | None
    app: str


def payment_terms(runner: Mapping[str, Any], capability: str) -> PaymentTerms:
    """From the runner's discovered ``price_info``: the billing type for its unit and a ceiling of
    ``PRICE_SLACK`` over the discovered price (py-1.0 does the same)."""
    price_info = runner.get("price_info") or {}
    unit = str(price_info.get("unit") or "seconds")
    max_price = None
    if isinstance(price_info.get("price"), (int, float)):
        max_price = {
            "price": float(price_info["price"]) * PRICE_SLACK,
            "currency": "wei",
            "unit": unit if unit in ("seconds", "720p-pixel-seconds", "fixed") else "seconds",
        }
    return PaymentTerms(_BILLING.get(unit, "live"), max_price, str(runner.get("app") or capability))


def _pay_challenge(
    signer: Signer, probe: Probe, req: Request, challenge: Mapping[str, Any]
) -> Op[PaymentTokens]:
    if signer.url is None:
        raise PaymentError(f"{probe.url} requires payment (402) but no signer_url is configured")
    try:
        params = base64.b64decode(str(challenge["payment_params"]))
        manifest = str(challenge["manifest_id"])
    except (KeyError, ValueError):
        raise PaymentError(f"{probe.url} sent a malformed 402 payment challenge") from None
    terms = payment_terms(probe.runner or {}, req.capability)
    signer.forget((probe.url, req.capability))
    tokens = yield from signer.payment(
        (probe.url, req.capability),
        params,
        billing=terms.billing,
        manifest_id=manifest,
        app=terms.app,
        max_price=terms.max_price,
    )
    if tokens is None:
        raise SignerError(
            "signer skipped a payment that the orchestrator demanded", status_code=482
        )
    return tokens


def attempt(
    signer: Signer, ident: Identity, probe: Probe, req: Request, *, force_payment: bool
) -> Op[Reply]:
    """Single-shot runners get one proxied call; persistent runners get session → call → stop."""
    runner = probe.runner or {}
    url = str(runner.get("url") or "")
    persistent = runner.get("mode") == "persistent" or url.rstrip("/").endswith("/session")
    headers: dict[str, str] = {"X-Request-Id": req.request_id}
    if ident.address != ZERO_ADDRESS:
        headers["Livepeer-Payer-Address"] = ident.address
    if req.stream:
        headers["Accept"] = "text/event-stream"
    target = url if persistent else url.rstrip("/")
    for paid in (False, True):
        call = Call(
            "POST",
            target,
            headers=headers,
            timeout=req.deadline.cap(req.deadline.remaining()),
            stream=req.stream and not persistent,
            **(body_fields(req.input) if not persistent else {"json": {}}),
        )
        reply: Reply = yield call
        if reply.status != 402 or paid:
            break
        try:
            challenge = json.loads(reply.body)
        except ValueError:
            return reply
        tokens = yield from _pay_challenge(signer, probe, req, challenge)
        headers = {
            **headers,
            "Livepeer-Payment": tokens.payment,
            "Livepeer-Segment": tokens.seg_creds,
        }
    if not persistent or reply.status >= 300:
        return reply
    try:
        session = json.loads(reply.body)
        sid = str(session["session_id"])
        app_url = safe_url(str(session.get("app_url") or f"{url.rstrip('/')}/{sid}/app"), probe.url)
    except (ValueError, KeyError):
        raise ConnectionError(f"{probe.url} returned a malformed session") from None
    stop_url = safe_url(f"{url.rstrip('/')}/{sid}/stop", probe.url)
    try:
        result: Reply = yield Call(
            "POST",
            app_url.rstrip("/") + "/",
            headers={"X-Request-Id": req.request_id},
            timeout=req.deadline.cap(req.deadline.remaining()),
            stream=req.stream,
            **body_fields(req.input),
        )
    except LivepeerError:
        yield from _stop(stop_url, req)
        raise
    if not req.stream:
        yield from _stop(stop_url, req)
    return result


def _stop(stop_url: str, req: Request) -> Op[None]:
    # A failed stop is harmless (the session expires on its own); the caller's result matters more.
    with contextlib.suppress(LivepeerError):
        yield Call("POST", stop_url, headers={"X-Request-Id": req.request_id}, timeout=5.0)
