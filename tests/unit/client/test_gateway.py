from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from livepeer.client import (
    APIStatusError,
    FileOutput,
    Gateway,
    NoOrchestratorError,
    PaymentError,
)

Start = Callable[[int], list[Any]]


def test_run_byoc_json(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    with Gateway(orch_url=orch.url) as gw:
        out = gw.run("text-reversal", input={"text": "hello"})
    assert out == {"original": "hello", "reversed": "olleh"}
    job = orch.jobs[0]
    assert job["capability"] == "text-reversal"
    assert job["timeout_seconds"] > 0
    assert json.loads(job["request"]) == {}
    assert json.loads(orch.bodies[0]) == {"text": "hello"}


def test_probe_is_cached_between_calls(fake_orchs: Start) -> None:
    a, b = fake_orchs(2)
    with Gateway(orch_url=[a.url, b.url]) as gw:
        for _ in range(3):
            gw.run("text-reversal", input={"text": "x"})
    assert (a.token_calls, b.token_calls) == (1, 1)
    assert a.request_calls + b.request_calls == 3


def test_single_offchain_orchestrator_skips_the_probe(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    with Gateway(orch_url=orch.url) as gw:
        gw.run("text-reversal", input={"text": "x"})
        gw.run("text-reversal", input={"text": "y"})
    assert orch.token_calls == 0
    assert orch.request_calls == 2


def test_skipped_probe_falls_back_to_selection(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    orch.capabilities = {}
    orch.request_status = 503
    gw = Gateway(orch_url=orch.url, max_retries=0)
    with gw, pytest.raises(NoOrchestratorError) as info:
        gw.run("text-reversal", input={"text": "x"})
    assert orch.token_calls == 1  # the fallback probed
    assert "capacity" in info.value.rejections[0].reason


@pytest.mark.anyio
async def test_run_async_twin(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    async with Gateway(orch_url=orch.url) as gw:
        out = await gw.run_async("text-reversal", input={"text": "abc"})
    assert out == {"original": "abc", "reversed": "cba"}


def test_selection_prefers_cheaper_orchestrator(fake_orchs: Start) -> None:
    dear, cheap = fake_orchs(2)
    dear.price = 10
    dear.balance = cheap.balance = 10**9  # enough credit: no payment needed
    cheap.price = 1
    with Gateway(orch_url=[dear.url, cheap.url], signer_url="http://127.0.0.1:9") as gw:
        gw._dispatch.signer.url = None  # no signer round trips: balances cover the price
        gw.run("text-reversal", input={"text": "x"})
    assert (cheap.request_calls, dear.request_calls) == (1, 0)


def test_max_price_filters_and_reports(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    orch.price = 50
    with Gateway(orch_url=orch.url, max_price=10) as gw, pytest.raises(NoOrchestratorError) as info:
        gw.run("text-reversal", input={"text": "x"})
    assert "max_price" in str(info.value)
    assert orch.request_calls == 0


def test_failover_matrix(fake_orchs: Start, dead_url: str) -> None:
    """Dead, out of capacity, 500 and 503 are skipped; the healthy orchestrator answers."""
    full, broken, busy, good = fake_orchs(4)
    full.capabilities = {}
    broken.request_status = 500
    busy.request_status = 503
    good.price, good.balance = 1, 10**9  # dearest, so tried last; credit covers it without paying
    urls = [dead_url, full.url, broken.url, busy.url, good.url]
    with Gateway(orch_url=urls, max_retries=0) as gw:
        out = gw.run("text-reversal", input={"text": "ok"})
    assert out == {"original": "ok", "reversed": "ko"}
    assert (broken.request_calls, busy.request_calls, good.request_calls) == (1, 1, 1)
    assert full.request_calls == 0


def test_validation_errors_do_not_fail_over(fake_orchs: Start) -> None:
    first, second = fake_orchs(2)
    first.request_status = second.request_status = 422
    first.request_body = second.request_body = b'{"detail": "text is required"}'
    with Gateway(orch_url=[first.url, second.url]) as gw, pytest.raises(APIStatusError) as info:
        gw.run("text-reversal", input={})
    err = info.value
    assert err.status_code == 422
    assert "text is required" in err.body
    assert err.orchestrator in (first.url, second.url)
    assert err.request_id
    assert first.request_calls + second.request_calls == 1


def test_no_orchestrator_lists_every_candidate(fake_orchs: Start, dead_url: str) -> None:
    full, broken = fake_orchs(2)
    full.capabilities = {}
    broken.request_status = 502
    gw = Gateway(orch_url=[dead_url, full.url, broken.url], max_retries=1)
    with gw, pytest.raises(NoOrchestratorError) as info:
        gw.run("text-reversal", input={"text": "x"})
    reasons = {r.orchestrator: r.reason for r in info.value.rejections}
    assert set(reasons) == {dead_url, full.url, broken.url}
    assert "cannot reach" in reasons[dead_url] or "ConnectError" in reasons[dead_url]
    assert "capacity" in reasons[full.url]
    assert "502" in reasons[broken.url]


def test_binary_result_is_file_output(fake_orchs: Start, tmp_path: Path) -> None:
    (orch,) = fake_orchs(1)
    orch.request_body = b"\x89PNG..."
    with Gateway(orch_url=orch.url) as gw:
        out = gw.run("text-reversal", input={"text": "x"})
    assert isinstance(out, FileOutput)
    assert out.content_type == "application/octet-stream"
    assert out.read() == b"\x89PNG..."
    assert out.save(tmp_path / "o.bin").read_bytes() == b"\x89PNG..."


def test_file_inputs_become_multipart(fake_orchs: Start, tmp_path: Path) -> None:
    (orch,) = fake_orchs(1)
    orch.request_body = b"ok-bytes"
    img = tmp_path / "cat.png"
    img.write_bytes(b"PNGDATA")
    with Gateway(orch_url=orch.url) as gw:
        gw.run("text-reversal", input={"image": img, "prompt": "x", "strength": 0.5})
    assert orch.content_types[0].startswith("multipart/form-data")
    body = orch.bodies[0]
    for needle in (b'filename="cat.png"', b"PNGDATA", b"image/png", b"0.5"):
        assert needle in body


def test_stream_events_balance_and_done(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    orch.sse_lines = [
        "data: one",
        "",
        "data: two",
        "",
        'data: {"balance": 3.5}',
        "",
        "data: [DONE]",
        "",
        "data: never",
        "",
    ]
    with Gateway(orch_url=orch.url) as gw:
        s = gw.stream("text-reversal", input={"text": "a"})
        assert orch.request_calls == 0  # lazily opened
        with s:
            datas = [ev.data for ev in s]
        assert datas == ["one", "two"]
        assert s.balance == 3.5
        assert s.orchestrator == orch.url
        assert s.closed


def test_stream_insufficient_balance_raises(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    orch.sse_lines = [
        "data: one",
        "",
        "event: insufficient balance",
        'data: {"balance": 0}',
        "",
        "data: [DONE]",
        "",
    ]
    with Gateway(orch_url=orch.url) as gw:
        got: list[str] = []

        def consume() -> None:
            with gw.stream("text-reversal", input={}) as s:
                got.extend(ev.data for ev in s)

        with pytest.raises(PaymentError, match="insufficient balance"):
            consume()
        assert got == ["one"]


@pytest.mark.anyio
async def test_stream_async(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    orch.sse_lines = ["data: a", "", "data: b", "", "data: [DONE]", ""]
    async with Gateway(orch_url=orch.url) as gw:
        async with gw.stream_async("text-reversal", input={}) as s:
            datas = [ev.data async for ev in s]
        assert datas == ["a", "b"]
        assert s.closed


def test_job_header_is_base64_json(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    with Gateway(orch_url=orch.url) as gw:
        gw.run("text-reversal", input={"text": "x"})
    job = orch.jobs[0]
    assert set(job) >= {
        "id",
        "request",
        "parameters",
        "capability",
        "sender",
        "sig",
        "timeout_seconds",
    }
    assert base64.b64encode(json.dumps(job).encode())  # round-trips


def test_module_level_verbs_use_environment(
    fake_orchs: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    import livepeer.client as lc

    (orch,) = fake_orchs(1)
    monkeypatch.setenv("LIVEPEER_ORCH_URL", orch.url)
    monkeypatch.setattr(lc, "_default", None)
    assert lc.run("text-reversal", input={"text": "env"}) == {"original": "env", "reversed": "vne"}
    assert lc.default_gateway() is lc.default_gateway()
    lc.default_gateway().close()


def test_capabilities_property_is_cached(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    with Gateway(orch_url=orch.url) as gw:
        caps = gw.capabilities
        assert gw.capabilities is caps
        assert type(caps).__module__.startswith("livepeer.capabilities")


def test_capabilities_missing_distribution_is_config_error(
    fake_orchs: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from livepeer.client import ConfigError

    monkeypatch.setitem(sys.modules, "livepeer.capabilities", None)
    (orch,) = fake_orchs(1)
    with (
        Gateway(orch_url=orch.url) as gw,
        pytest.raises(ConfigError, match="livepeer-capabilities"),
    ):
        _ = gw.capabilities


def test_stream_of_a_batch_answer_is_one_event(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    with Gateway(orch_url=orch.url) as gw, gw.stream("text-reversal", input={"text": "ab"}) as s:
        events = list(s)
    assert [e.json() for e in events] == [{"original": "ab", "reversed": "ba"}]


@pytest.mark.parametrize(
    ("status", "fails_over"),
    [
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (413, False),
        (422, False),
    ],
)
def test_status_matrix(fake_orchs: Start, status: int, fails_over: bool) -> None:
    first, second = fake_orchs(2)
    first.request_status = status
    second.price, second.balance = 1, 10**9  # tried second
    gw = Gateway(orch_url=[first.url, second.url], max_retries=0)
    with gw:
        if fails_over:
            assert gw.run("text-reversal", input={"text": "m"}) == {
                "original": "m",
                "reversed": "m",
            }
        else:
            with pytest.raises(APIStatusError) as info:
                gw.run("text-reversal", input={"text": "m"})
            assert info.value.status_code == status
    assert second.request_calls == (1 if fails_over else 0)


def test_retry_round_after_backoff(fake_orchs: Start) -> None:
    a, b = fake_orchs(2)
    a.request_statuses = [503]
    b.request_statuses = [503]
    with Gateway(orch_url=[a.url, b.url], max_retries=1) as gw:
        assert gw.run("text-reversal", input={"text": "r"}) == {"original": "r", "reversed": "r"}
    assert a.request_calls + b.request_calls == 3
    assert a.token_calls + b.token_calls == 4  # the second round re-probed both failed ones


def test_overall_deadline_bounds_retries(fake_orchs: Start) -> None:
    from livepeer.client import TimeoutError

    a, b = fake_orchs(2)
    a.request_status = b.request_status = 503
    gw = Gateway(orch_url=[a.url, b.url], max_retries=50, timeout=1.0)
    with gw, pytest.raises((TimeoutError, NoOrchestratorError)):
        gw.run("text-reversal", input={"text": "x"})
    assert a.request_calls + b.request_calls < 50
