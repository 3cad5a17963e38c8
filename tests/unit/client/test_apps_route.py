"""The live-runner app route (``_routes/apps.py``), pinned call by call.

Pure functions (runner choice, probes, payment terms, ``list_capabilities`` rows) are tested directly; the
sans-IO ops (``attempt``, ``start_live``, ``AppJob``) are driven by hand against scripted replies, which
shows every ``Call`` they make (URL, headers, body, timeout, size limit, streaming) — the parts a loopback
server cannot see. The real ``Signer`` pays, so its ``/generate-live-payment`` bodies are the ones a signer
would receive. Loopback tests through ``Gateway`` are in test_apps.py and starters/test_apps_live_start.py.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Generator
from types import SimpleNamespace
from typing import Any, cast

import pytest

from livepeer.client import ConnectionError, Gateway, PaymentError
from livepeer.client._errors import LivepeerError, SignerPriceError, SignerSkipError
from livepeer.client._ops import Call, Deadline, Reply
from livepeer.client._route import LiveRequest, Offering, Probe, Request
from livepeer.client._routes import apps
from livepeer.client._signer import ZERO_ADDRESS, Identity, Signer

ORCH = "https://orch.test:8935"
SIGNER = "https://signer.test"
PAYER = "0x" + "Ab" * 20
ME = Identity(PAYER, "0x" + "11" * 65)
NOBODY = Identity(ZERO_ADDRESS, "")
Answer = Callable[[Call], Reply]


def reply(status: int = 200, body: object = b"", url: str = ORCH, elapsed: float = 0.0) -> Reply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Reply(status, {}, raw, url, elapsed)


def run_op(op: Generator[Any, Any, Any], answer: Answer, calls: list[Call]) -> Any:
    """Run a sans-IO op; every call it yields is recorded in ``calls`` (as it is made) and answered by
    ``answer`` (or the error it raises); the op's result."""
    step = next(op)
    try:
        while True:
            calls.append(step)
            try:
                got = answer(step)
            except LivepeerError as exc:
                step = op.throw(exc)
                continue
            step = op.send(got)
    except StopIteration as stop:
        return stop.value


def signer_answer(statuses: list[int] | None = None) -> tuple[Answer, list[dict[str, Any]]]:
    """A signer: ``/generate-live-payment`` answers from ``statuses`` (200 when empty), bodies recorded."""
    queue = list(statuses or [])
    bodies: list[dict[str, Any]] = []

    def answer(call: Call) -> Reply:
        assert call.url == SIGNER + "/generate-live-payment"
        bodies.append(cast(dict[str, Any], call.json))
        status = queue.pop(0) if queue else 200
        if status != 200:
            return reply(status, {"error": {"message": f"status {status}"}}, SIGNER)
        n = len(bodies)
        return reply(
            200,
            {
                "payment": base64.b64encode(f"pay-{n}".encode()).decode(),
                "segCreds": base64.b64encode(f"seg-{n}".encode()).decode(),
                "state": {"State": f"s{n}"},
            },
            SIGNER,
        )

    return answer, bodies


def challenge(n: int = 1, status: int = 402) -> Reply:
    return reply(
        status,
        {
            "payment_params": base64.b64encode(f"params-{n}".encode()).decode(),
            "manifest_id": f"m-{n}",
            "payment_url": "/pay",
        },
    )


def runner(**fields: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"app": "my-app", "url": f"{ORCH}/apps/r1/app", "capacity_available": 1}
    r.update(fields)
    return {k: v for k, v in r.items() if v is not None}


def probe_of(r: dict[str, Any]) -> Probe:
    return Probe(ORCH, "apps", ok=True, runner=r)


def req(stream: bool = False, seconds: float = 100.0, payload: Any = None) -> Request:
    return Request(
        "my-app", None, {"q": 1} if payload is None else payload, "rid-1", Deadline(seconds), stream
    )


# -- find_runner / names_exactly ---------------------------------------------------------------------


def test_find_runner_skips_runners_without_a_url_or_app() -> None:
    no_url = {"app": "cap"}
    bad_app = {"app": 7, "url": "/x"}
    good = {"app": "cap", "url": "/y"}
    assert apps.find_runner([no_url], "cap", None) is None
    assert apps.find_runner([bad_app, good], "cap", None) is good  # skip, not stop


@pytest.mark.parametrize(
    ("app", "model", "found"),
    [
        ("cap", None, True),
        ("cap", "m", True),  # the pipeline named with model= still matches its bare app
        ("cap/m", "m", True),
        ("cap/m", None, True),  # no model: any app under the pipeline
        ("cap/other", "m", False),  # a model was named: only that one
        ("cap/None", None, True),  # (prefix rule)
        ("capx", None, False),
        ("other/cap", None, False),
    ],
)
def test_find_runner_matches_the_app_name(app: str, model: str | None, found: bool) -> None:
    r = {"app": app, "url": "/x"}
    assert (apps.find_runner([r], "cap", model) is r) is found


@pytest.mark.parametrize(
    ("app", "model", "exact"),
    [
        ("cap", None, True),
        ("cap", "m", True),
        ("cap/m", "m", True),
        ("cap/m", None, False),  # found by prefix only, not named by the caller
        ("cap/None", None, False),
        ("cap/x", "m", False),
        ("other", "m", False),
    ],
)
def test_names_exactly(app: str, model: str | None, exact: bool) -> None:
    assert apps.names_exactly({"app": app, "url": "/x"}, "cap", model) is exact


def test_find_runner_prefers_a_runner_with_free_capacity() -> None:
    full = {"app": "cap", "url": "/a", "capacity_available": 0}
    free = {"app": "cap", "url": "/b", "capacity_available": 1}
    unknown = {"app": "cap", "url": "/c"}
    two = {"app": "cap", "url": "/d", "capacity_available": 2}
    assert apps.find_runner([full, free], "cap", None) is free
    assert apps.find_runner([free, full], "cap", None) is free
    assert apps.find_runner([free, unknown], "cap", None) is free
    assert apps.find_runner([full, unknown], "cap", None) is full  # first match kept
    assert apps.find_runner([free, two], "cap", None) is two  # the last one with capacity


# -- probes -------------------------------------------------------------------------------------------


def test_probe_call() -> None:
    call = apps.probe_call(ORCH, 2.5)
    assert (call.method, call.url, call.timeout, call.limit) == (
        "GET",
        ORCH + "/discovery",
        2.5,
        1 << 20,
    )
    assert apps.ROUTE.probe_call(ORCH, "cap", None, ME, 4.0) == apps.probe_call(ORCH, 4.0)
    assert apps.ROUTE.listing_call(ORCH, ME, 3.0) == apps.probe_call(ORCH, 3.0)


def _fields(p: Probe) -> dict[str, Any]:
    out = dataclasses.asdict(p)
    del out["created"]
    return out


def test_probe_from_runner_reads_price_capacity_and_resolves_the_url() -> None:
    r = {"app": "cap", "url": "/apps/r/app", "capacity_available": 2, "price_info": {"price": 5}}
    p = apps.probe_from_runner(ORCH, r, 0.25)
    assert _fields(p) == _fields(
        Probe(
            ORCH,
            "apps",
            ok=True,
            reason="",
            price=5.0,
            latency=0.25,
            capacity=2,
            offers=True,
            runner={**r, "url": ORCH + "/apps/r/app"},
        )
    )
    assert apps.probe_from_runner(ORCH, r).latency == 0.0


def test_a_runner_without_capacity_is_not_ok() -> None:
    p = apps.probe_from_runner(ORCH, {"app": "cap", "url": "/x", "capacity_available": 0})
    assert (p.ok, p.reason, p.capacity, p.offers) == (False, "runner cap has no capacity", 0, True)
    p = apps.probe_from_runner(ORCH, {"app": "cap", "url": "/x", "price_info": {"price": "5"}})
    assert (p.ok, p.reason, p.capacity, p.price) == (True, "", None, 0.0)
    p = apps.probe_from_runner(ORCH, {"app": "cap", "url": "/x", "price_info": None})
    assert p.price == 0.0


def test_a_runner_on_another_host_is_an_offer_that_cannot_be_used() -> None:
    p = apps.probe_from_runner(ORCH, {"app": "cap", "url": "https://evil.example/x"})
    assert (p.ok, p.offers, p.runner) == (False, True, None)
    assert "another host" in p.reason


def _discovery(*entries: object, status: int = 200) -> Reply:
    return reply(status, list(entries), elapsed=0.5)


def test_read_probe() -> None:
    r = {"app": "cap", "url": "/apps/r/app", "capacity_available": 1}
    good = _discovery("junk", {"runners": "junk"}, {"runners": ["junk", r]})
    p = apps.read_probe(ORCH, "cap", None, good)
    assert p is not None
    assert p.runner == {**r, "url": ORCH + "/apps/r/app"}
    assert p.latency == 0.5
    assert apps.read_probe(ORCH, "cap", None, _discovery({"runners": [r]}, status=404)) is None
    assert apps.read_probe(ORCH, "cap", None, reply(200, b"not json")) is None
    assert apps.read_probe(ORCH, "cap", None, reply(200, {"runners": [r]})) is None  # not a list
    assert apps.read_probe(ORCH, "cap", None, ConnectionError("down")) is None
    assert apps.read_probe(ORCH, "other", None, good) is None


def test_the_route_says_why_an_orchestrator_has_no_app() -> None:
    p = apps.ROUTE.read_probe(ORCH, "cap", None, _discovery({"runners": []}))
    assert _fields(p) == _fields(
        Probe(
            ORCH, "apps", ok=False, reason="no live-runner app 'cap'", offers=False, reachable=True
        )
    )
    p = apps.ROUTE.read_probe(ORCH, "cap", None, ConnectionError("down"))
    assert (p.ok, p.offers, p.reachable) == (False, False, False)
    r = {"app": "cap", "url": "/x"}
    found = apps.ROUTE.read_probe(ORCH, "cap", None, _discovery({"runners": [r]}))
    assert (found.ok, found.offers, found.reachable) == (True, True, True)


def test_one_free_orchestrator_is_still_probed(fake_orchs: Callable[[int], list[Any]]) -> None:
    # An unprobed first try (probe_free routes) would have no runner URL: apps always probe /discovery.
    (a,) = fake_orchs(1)
    a.capabilities = {}
    a.runners = [{"app": "one-app", "url": "/apps/one/app", "mode": "single-shot"}]
    with Gateway(orch_url=[a.url], max_retries=0) as gw:
        out = gw.run("one-app", input={"x": 1}, route="app")
    assert out == {"echo": {"x": 1}, "path": "/apps/one/app"}
    assert apps.ROUTE.probe_free is False


# -- payment terms ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "billing", "ceiling_unit"),
    [
        ("seconds", "live", "seconds"),
        ("hour", "live", "seconds"),
        ("720p-pixel-seconds", "lv2v", "720p-pixel-seconds"),
        ("720p", "lv2v", "seconds"),
        ("fixed", "fixed", "fixed"),
        ("minutes", "live", "seconds"),
        (None, "live", "seconds"),
    ],
)
def test_payment_terms_per_unit(unit: str | None, billing: str, ceiling_unit: str) -> None:
    info: dict[str, Any] = {"price": 10}
    if unit is not None:
        info["unit"] = unit
    terms = apps.payment_terms({"app": "cap/m", "price_info": info}, "cap")
    assert terms == apps.PaymentTerms(
        billing,
        {"price": pytest.approx(10 * 1.012), "currency": "wei", "unit": ceiling_unit},
        "cap/m",
    )


def test_payment_terms_without_a_price_or_app() -> None:
    assert apps.payment_terms({}, "cap") == apps.PaymentTerms("live", None, "cap")
    assert apps.payment_terms({"price_info": {"unit": "fixed"}}, "cap") == apps.PaymentTerms(
        "fixed", None, "cap"
    )
    terms = apps.payment_terms({"app": "x"}, "cap")
    with pytest.raises(dataclasses.FrozenInstanceError):
        terms.app = "y"  # type: ignore[misc]


# -- attempt: single-shot runners ---------------------------------------------------------------------


def test_a_single_shot_call_carries_the_request() -> None:
    r = runner(mode="single-shot", url=f"{ORCH}/apps/r1/app/")
    calls: list[Call] = []
    out = run_op(
        apps.attempt(Signer(None, {}), ME, probe_of(r), req(), force_payment=False),
        lambda c: reply(200, {"ok": 1}),
        calls,
    )
    assert out.status == 200
    (call,) = calls
    assert (call.method, call.url, call.json, call.stream) == (
        "POST",
        f"{ORCH}/apps/r1/app",
        {"q": 1},
        False,
    )
    assert call.headers == {"X-Request-Id": "rid-1", "Livepeer-Payer-Address": PAYER}
    assert 99.0 < call.timeout <= 100.0  # the caller's deadline, not a default


def test_a_streamed_single_shot_call_asks_for_sse() -> None:
    calls: list[Call] = []
    run_op(
        apps.attempt(
            Signer(None, {}), NOBODY, probe_of(runner()), req(stream=True), force_payment=False
        ),
        lambda c: reply(200),
        calls,
    )
    (call,) = calls
    assert call.stream is True
    assert call.headers == {"X-Request-Id": "rid-1", "Accept": "text/event-stream"}


def test_each_challenged_session_pays_on_its_own_signer_chain() -> None:
    """Two calls on one app and orchestrator, each with its challenge (manifest m-1, then m-2): the second
    starts its own chain instead of replacing the first's (whose session would then reuse nonces or be
    skipped on the other session's credit)."""
    signer = Signer(SIGNER, {})
    pay, bodies = signer_answer()
    orch_replies = [challenge(1), reply(200, {"ok": 1}), challenge(2), reply(200, {"ok": 1})]

    def answer(call: Call) -> Reply:
        return pay(call) if call.url.startswith(SIGNER) else orch_replies.pop(0)

    for _ in range(2):
        run_op(apps.attempt(signer, ME, probe_of(runner()), req(), force_payment=False), answer, [])
    assert [b["ManifestID"] for b in bodies] == ["m-1", "m-2"]
    assert "state" not in bodies[1]  # a new chain, not the first one's state
    assert {k: st.state for k, st in signer.states.items()} == {
        (ORCH, "my-app:m-1"): {"State": "s1"},
        (ORCH, "my-app:m-2"): {"State": "s2"},
    }
    # A challenge brings fresh ticket parameters: even for a manifest seen before, a new chain pays it.
    orch_replies += [challenge(1), reply(200, {"ok": 1})]
    run_op(apps.attempt(signer, ME, probe_of(runner()), req(), force_payment=False), answer, [])
    assert (bodies[2]["ManifestID"], "state" in bodies[2]) == ("m-1", False)


def test_the_402_challenge_is_paid_once_with_the_runners_terms() -> None:
    r = runner(price_info={"price": 4, "unit": "720p-pixel-seconds"})
    signer = Signer(SIGNER, {})
    pay, bodies = signer_answer()
    orch_replies = [challenge(1), reply(200, {"ok": 1})]
    calls: list[Call] = []

    def answer(call: Call) -> Reply:
        return pay(call) if call.url.startswith(SIGNER) else orch_replies.pop(0)

    out = run_op(apps.attempt(signer, ME, probe_of(r), req(), force_payment=False), answer, calls)
    assert out.status == 200
    first, _, second = calls
    assert "Livepeer-Payment" not in first.headers
    assert second.headers == {
        "X-Request-Id": "rid-1",
        "Livepeer-Payer-Address": PAYER,
        "Livepeer-Payment": base64.b64encode(b"pay-1").decode(),
        "Livepeer-Segment": base64.b64encode(b"seg-1").decode(),
    }
    (body,) = bodies
    assert body == {
        "orchestrator": base64.b64encode(b"params-1").decode(),
        "ManifestID": "m-1",
        "type": "lv2v",
        "app": "my-app",
        "maxPrice": {
            "price": pytest.approx(4 * 1.012),
            "currency": "wei",
            "unit": "720p-pixel-seconds",
        },
    }


def test_a_second_402_is_returned_not_paid_again() -> None:
    signer = Signer(SIGNER, {})
    pay, bodies = signer_answer()
    calls: list[Call] = []

    def answer(call: Call) -> Reply:
        return pay(call) if call.url.startswith(SIGNER) else challenge(len(calls))

    out = run_op(
        apps.attempt(signer, ME, probe_of(runner()), req(), force_payment=False), answer, calls
    )
    assert out.status == 402
    assert len(bodies) == 1
    assert len(calls) == 3


def test_every_challenge_starts_a_new_payment_chain() -> None:
    # A 402 means the orchestrator holds no usable balance for us: the old chain (its state, its manifest)
    # is dropped and the new challenge's manifest is paid.
    signer = Signer(SIGNER, {})
    pay, bodies = signer_answer()
    for n in (1, 2):
        orch_replies = [challenge(n), reply(200)]

        def answer(call: Call, orch_replies: list[Reply] = orch_replies) -> Reply:
            return pay(call) if call.url.startswith(SIGNER) else orch_replies.pop(0)

        run_op(apps.attempt(signer, ME, probe_of(runner()), req(), force_payment=False), answer, [])
    assert [b["ManifestID"] for b in bodies] == ["m-1", "m-2"]
    assert "state" not in bodies[1]


def test_a_price_refusal_drops_the_chain() -> None:
    signer = Signer(SIGNER, {})
    pay, _ = signer_answer([481])
    with pytest.raises(SignerPriceError):
        run_op(
            apps.attempt(signer, ME, probe_of(runner()), req(), force_payment=False),
            lambda c: pay(c) if c.url.startswith(SIGNER) else challenge(1),
            [],
        )
    assert signer.states == {}


def test_a_skipped_payment_where_one_is_demanded_is_an_error() -> None:
    signer = Signer(SIGNER, {})
    pay, _ = signer_answer([482])
    with pytest.raises(SignerSkipError) as info:
        run_op(
            apps.attempt(signer, ME, probe_of(runner()), req(), force_payment=False),
            lambda c: pay(c) if c.url.startswith(SIGNER) else challenge(1),
            [],
        )
    assert info.value.status_code == 482
    assert str(info.value) == "signer skipped a payment that the orchestrator demanded"


def test_a_challenge_without_a_signer_or_malformed() -> None:
    with pytest.raises(PaymentError, match=r"requires payment \(402\) but no signer_url"):
        run_op(apps.attempt(Signer(None, {}), ME, probe_of(runner()), req(), force_payment=False),
               lambda c: challenge(1), [])  # fmt: skip
    with pytest.raises(PaymentError, match="malformed 402 payment challenge"):
        run_op(apps.attempt(Signer(SIGNER, {}), ME, probe_of(runner()), req(), force_payment=False),
               lambda c: reply(402, {"manifest_id": "m"}), [])  # fmt: skip
    out = run_op(
        apps.attempt(Signer(SIGNER, {}), ME, probe_of(runner()), req(), force_payment=False),
        lambda c: reply(402, b"pay me"),
        [],
    )
    assert (out.status, out.body) == (402, b"pay me")


# -- attempt: persistent runners ----------------------------------------------------------------------


def _persistent(
    r: dict[str, Any], session: Reply, stream: bool = False, app_fails: bool = False
) -> tuple[Any, list[Call]]:
    calls: list[Call] = []

    def answer(call: Call) -> Reply:
        if len(calls) == 1:
            return session
        if app_fails and len(calls) == 2:
            raise ConnectionError("app gone")
        return reply(200, {"app": call.url})

    out = run_op(
        apps.attempt(Signer(None, {}), ME, probe_of(r), req(stream=stream), force_payment=False),
        answer,
        calls,
    )
    return out, calls


@pytest.mark.parametrize(
    "r",
    [
        runner(mode="persistent", url=f"{ORCH}/apps/r1/run"),
        runner(url=f"{ORCH}/apps/r1/session/"),  # no mode: the URL says it
    ],
)
def test_a_persistent_runner_opens_calls_and_stops_a_session(r: dict[str, Any]) -> None:
    base = r["url"].rstrip("/")
    out, calls = _persistent(r, reply(200, {"session_id": "s9"}))
    assert json.loads(out.body) == {"app": f"{base}/s9/app/"}
    start, call, stop = calls
    assert (start.url, start.json, start.stream) == (r["url"], {}, False)
    assert start.headers == {"X-Request-Id": "rid-1", "Livepeer-Payer-Address": PAYER}
    assert (call.url, call.json, call.headers, call.stream) == (
        f"{base}/s9/app/", {"q": 1}, {"X-Request-Id": "rid-1"}, False,
    )  # fmt: skip
    assert 99.0 < call.timeout <= 100.0
    assert (stop.method, stop.url, stop.headers, stop.timeout) == (
        "POST", f"{base}/s9/stop", {"X-Request-Id": "rid-1"}, 5.0,
    )  # fmt: skip


def test_a_streamed_persistent_call_streams_only_the_app_call_and_keeps_the_session() -> None:
    r = runner(mode="persistent", url=f"{ORCH}/apps/r1/session")
    _, calls = _persistent(
        r, reply(200, {"session_id": "s9", "app_url": "/custom/app"}), stream=True
    )
    start, call = calls  # the stream's reader stops it
    assert start.stream is False
    assert start.headers["Accept"] == "text/event-stream"
    assert (call.url, call.stream) == (f"{ORCH}/custom/app/", True)


def test_a_failed_app_call_still_stops_the_session() -> None:
    r = runner(mode="persistent", url=f"{ORCH}/apps/r1/session")
    with pytest.raises(ConnectionError, match="app gone"):
        _persistent(r, reply(200, {"session_id": "s9"}), app_fails=True)


@pytest.mark.parametrize("status", [300, 404])
def test_a_refused_session_start_is_returned(status: int) -> None:
    r = runner(mode="persistent", url=f"{ORCH}/apps/r1/session")
    out, calls = _persistent(r, reply(status, b"no"))
    assert (out.status, len(calls)) == (status, 1)


def test_a_malformed_session_is_a_connection_error() -> None:
    r = runner(mode="persistent", url=f"{ORCH}/apps/r1/session")
    with pytest.raises(ConnectionError, match="returned a malformed session"):
        _persistent(r, reply(200, {"app_url": "/x"}))


# -- start_live ---------------------------------------------------------------------------------------


def _io(signer: Signer) -> Any:
    return SimpleNamespace(signer=signer)


def _live() -> LiveRequest:
    return LiveRequest("my-app", None, {}, "rid-2", "")


def test_start_live_posts_the_session_url_with_its_bounds() -> None:
    r = runner(mode="persistent", url=f"{ORCH}/apps/r1/run/")
    calls: list[Call] = []
    out = run_op(
        apps.start_live(_io(Signer(None, {})), ME, probe_of(r), _live(), Deadline(100)),
        lambda c: reply(200, {"session_id": "s1"}),
        calls,
    )
    _, job, response = out
    assert response == {
        "stream_id": "s1",
        "session_id": "s1",
        "app_url": f"{ORCH}/apps/r1/run/s1/app",
    }
    (call,) = calls
    assert (call.url, call.json, call.timeout, call.limit) == (
        f"{ORCH}/apps/r1/run",
        {},
        30.0,
        1 << 20,
    )
    assert call.headers == {"X-Request-Id": "rid-2", "Livepeer-Payer-Address": PAYER}
    assert job.payment_interval is None  # free: nothing to pay as time passes
    assert (job.payments, job.payment_cycles) == (0, 0)


# -- AppJob: payments and stop ------------------------------------------------------------------------


def _job(signer: Signer, answer: Answer, calls: list[Call], unit: str = "seconds") -> apps.AppJob:
    r = runner(
        mode="persistent", url=f"{ORCH}/apps/r1/session", price_info={"price": 2, "unit": unit}
    )

    async def arun(op: Any) -> Any:
        return run_op(op, answer, calls)

    io = SimpleNamespace(signer=signer, arun=arun)
    started = apps.AppStarted(
        probe_of(r), ME, Request("my-app", None, None, "rid-3", Deadline(100)),
        f"{ORCH}/apps/r1/session", "s1",
        apps._Challenge(b"params-1", "m-1", f"{ORCH}/pay"), {},
    )  # fmt: skip
    return apps.AppJob(cast(Any, io), started)


@pytest.mark.anyio
async def test_a_payment_cycle_pays_the_challenge_manifest_and_counts() -> None:
    signer = Signer(SIGNER, {})  # no chain yet: the manifest must come from the challenge
    pay, bodies = signer_answer([480])
    calls: list[Call] = []

    def answer(call: Call) -> Reply:
        if call.url.startswith(SIGNER):
            return pay(call)
        if call.url.endswith("/refresh-payment"):
            return challenge(2, status=200)
        return reply(200)

    job = _job(signer, answer, calls)
    assert job.payment_interval == 3.0
    assert (job.payments, job.payment_cycles) == (0, 0)
    await job.pay()
    assert (job.payments, job.payment_cycles) == (1, 1)
    assert [b["ManifestID"] for b in bodies] == ["m-1", "m-1"]  # 480 refreshes, the same chain pays
    assert bodies[0]["type"] == "live"
    refresh, payment = (c for c in calls if not c.url.startswith(SIGNER))
    assert (refresh.url, refresh.json, refresh.timeout, refresh.limit) == (
        f"{ORCH}/refresh-payment", {"sender": PAYER, "manifest_id": "m-1"}, 30.0, 1 << 20,
    )  # fmt: skip
    assert (payment.url, payment.timeout, payment.limit) == (f"{ORCH}/pay", 30.0, 1 << 20)
    assert payment.headers == {
        "Livepeer-Payment": base64.b64encode(b"pay-2").decode(),
        "Livepeer-Segment": base64.b64encode(b"seg-2").decode(),
    }
    await job.pay()
    assert (job.payments, job.payment_cycles) == (2, 2)
    # The session's own chain (the start's manifest, A12), dropped when the session stops.
    assert list(signer.states) == [(ORCH, "my-app:m-1")]
    await job.stop()
    assert signer.states == {}


@pytest.mark.anyio
async def test_a_skipped_cycle_counts_as_a_cycle_not_a_payment() -> None:
    pay, _ = signer_answer([482])
    job = _job(Signer(SIGNER, {}), pay, [])
    await job.pay()
    assert (job.payments, job.payment_cycles) == (0, 1)


@pytest.mark.anyio
async def test_a_fixed_price_session_is_not_metered_and_stops_with_a_bound() -> None:
    calls: list[Call] = []
    job = _job(Signer(SIGNER, {}), lambda c: reply(204), calls, unit="fixed")
    assert job.payment_interval is None
    assert job.orchestrator == ORCH
    await job.stop()
    (stop,) = calls
    assert (stop.method, stop.url, stop.timeout) == (
        "POST",
        f"{ORCH}/apps/r1/session/s1/stop",
        10.0,
    )


# -- list_capabilities rows ---------------------------------------------------------------------------


def test_offerings_from_discovery() -> None:
    rows = [
        {
            "app": "a",
            "url": "/a",
            "price_info": {"price": 3, "unit": "seconds"},
            "capacity_available": 2,
        },
        {
            "app": "b",
            "price_info": {"price": 1.5, "unit": "720p-pixel-seconds"},
            "capacity_available": 0,
        },
        {"app": "c", "price_info": {"price": 9, "unit": "fixed"}},
        {"app": "d", "price_info": {"price": 0, "unit": "pixels"}, "capacity_available": -1},
        {"app": "e", "price_info": {"price": -1, "unit": 5}, "capacity_available": True},
        {"app": "f", "price_info": {"price": True}},
        {"app": "g", "price_info": {"price": float("inf")}},
        {"app": "h", "price_info": "free"},
        {"app": 5},
        "junk",
    ]
    got = apps.offerings_from_discovery(
        ORCH, _discovery("junk", {"runners": "x"}, {"runners": rows})
    )
    assert got == [
        Offering("a", ORCH, "app", 3.0, "wei/second", 2),
        Offering("b", ORCH, "app", 1.5, "wei/720p-pixel-second", 0),
        Offering("c", ORCH, "app", 9.0, "wei/session", None),
        Offering("d", ORCH, "app", 0.0, "pixels", None),
        Offering("e", ORCH, "app", None, None, None),
        Offering("f", ORCH, "app", None, None, None),
        Offering("g", ORCH, "app", None, None, None),
        Offering("h", ORCH, "app", None, None, None),
    ]
    assert apps.ROUTE.offerings is apps.offerings_from_discovery


def test_offerings_from_a_failed_discovery() -> None:
    rows = {"runners": [{"app": "a"}]}
    assert apps.offerings_from_discovery(ORCH, _discovery(rows, status=404)) == []
    assert apps.offerings_from_discovery(ORCH, reply(200, b"{not json")) == []
    assert apps.offerings_from_discovery(ORCH, reply(200, rows)) == []  # not a list
