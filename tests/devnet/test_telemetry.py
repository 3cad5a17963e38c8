"""OpenTelemetry spans for run, stream and live, exported through the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from livepeer.client import Gateway, NoOrchestratorError
from livepeer.devnet import DevnetOptions

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # The global provider can be set once per process; the exporter is cleared per test instead.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for span in exporter.get_finished_spans():
        out.setdefault(span.name, []).append(span)
    return out


def test_run_and_stream_spans_nest_attempts(devnet: Any, spans: InMemorySpanExporter) -> None:
    with Gateway(token=devnet.token) as gw:
        gw.run("text-reversal", input={"text": "ab"})
        with gw.stream("token-stream", input={"text": "a b"}) as s:
            list(s)
    got = by_name(spans)
    (run,) = got["livepeer.run text-reversal"]
    (stream,) = got["livepeer.stream token-stream"]
    attempts = got["livepeer.attempt byoc"]
    assert run.attributes["livepeer.capability"] == "text-reversal"
    assert run.attributes["gen_ai.operation.name"] == "run"
    assert run.attributes["livepeer.route"] == "byoc"
    assert run.attributes["livepeer.cost_wei"] == 0
    assert str(run.attributes["livepeer.orchestrator"]).startswith("https://127.0.0.1:")
    assert stream.attributes["gen_ai.operation.name"] == "stream"
    parents = {a.parent.span_id for a in attempts if a.parent is not None}
    assert run.context.span_id in parents
    assert stream.context.span_id in parents
    assert all(a.attributes["http.response.status_code"] == 200 for a in attempts)
    assert all(a.attributes["server.address"] == "127.0.0.1" for a in attempts)


def test_failover_is_visible_in_attempt_spans(
    devnet_factory: Any, spans: InMemorySpanExporter
) -> None:
    net = devnet_factory(DevnetOptions(orchestrators=2))
    net.faults(0).worker_dead = True
    net.faults(1).worker_dead = True
    gw = Gateway(token=net.token, max_retries=0)
    with gw, pytest.raises(NoOrchestratorError):
        gw.run("text-reversal", input={"text": "x"})
    got = by_name(spans)
    (run,) = got["livepeer.run text-reversal"]
    assert run.status.status_code == trace.StatusCode.ERROR
    assert run.attributes["error.type"] == "NoOrchestratorError"
    failed = [a for a in got["livepeer.attempt byoc"] if "livepeer.failover.reason" in a.attributes]
    assert len(failed) >= 2
    assert run.attributes["livepeer.retries"] >= 1


@pytest.mark.anyio
async def test_live_session_span_with_state_events(
    devnet: Any, spans: InMemorySpanExporter
) -> None:
    async with Gateway(token=devnet.token) as gw:
        with anyio.fail_after(60):
            async with gw.live("live-video-to-video", model="noop") as session:
                assert session.orchestrator
    got = by_name(spans)
    (live,) = got["livepeer.live live-video-to-video"]
    assert live.attributes["gen_ai.request.model"] == "noop"
    events = [e.name for e in live.events]
    assert events[0] == "livepeer.live.started"
    assert events[-1] == "livepeer.live.closed"
    attempts = [s for name, ss in got.items() if name.startswith("livepeer.attempt") for s in ss]
    assert any(a.parent is not None and a.parent.span_id == live.context.span_id for a in attempts)
