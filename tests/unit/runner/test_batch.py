"""Batch pipelines over real HTTP: input validation, outputs, errors, auth, health and info routes."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from pydantic import BaseModel, Field

from livepeer.runner import Pipeline, PipelineError, openapi_json


class Echo(BaseModel):
    text: str
    times: int
    shout: bool


class EchoPipeline(Pipeline):
    """Repeat a text."""

    name = "echo"

    def predict(
        self,
        text: Annotated[str, Field(min_length=1, max_length=20)],
        times: Annotated[int, Field(ge=1, le=3)] = 1,
        shout: bool = False,
    ) -> Echo:
        out = " ".join([text] * times)
        return Echo(text=out.upper() if shout else out, times=times, shout=shout)


class AsyncAdd(Pipeline):
    async def predict(self, a: int, b: int) -> dict[str, int]:
        await anyio.lowlevel.checkpoint()
        return {"sum": a + b}


class Failing(Pipeline):
    def predict(self, mode: str) -> str:
        if mode == "teapot":
            raise PipelineError("short and stout", status_code=418)
        if mode == "bad":
            raise PipelineError("bad mode")
        raise ZeroDivisionError("boom")


class Binary(Pipeline):
    output_media_type = "image/x-test"

    def predict(self, size: int) -> bytes:
        return bytes(range(size))


class Lenient(Pipeline):
    extra_inputs = "ignore"

    def predict(self, x: int = 0) -> int:
        return x


class NoInput(Pipeline):
    def predict(self) -> list[str]:
        return ["ok"]


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/", "/echo", "/some/nested/route"])
async def test_json_output_on_any_post_path(running: Any, path: str) -> None:
    async with running(EchoPipeline) as client:
        r = await client.post(path, json={"text": "hi", "times": 2, "shout": True})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"text": "HI HI", "times": 2, "shout": True}


@pytest.mark.anyio
async def test_defaults_come_from_the_signature(running: Any) -> None:
    async with running(EchoPipeline) as client:
        r = await client.post("/", json={"text": "yo"})
    assert r.json() == {"text": "yo", "times": 1, "shout": False}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({}, ["body", "text"], "missing"),
        ({"text": ""}, ["body", "text"], "string_too_short"),
        ({"text": "a", "times": 9}, ["body", "times"], "less_than_equal"),
        ({"text": "a", "times": "x"}, ["body", "times"], "int_parsing"),
        ({"text": "a", "color": "red"}, ["body", "color"], "extra_forbidden"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    running: Any, body: dict[str, Any], loc: list[str], error_type: str
) -> None:
    async with running(EchoPipeline) as client:
        r = await client.post("/", json=body)
    assert r.status_code == 422
    errors = r.json()["detail"]
    assert [e["loc"] for e in errors] == [loc]
    assert errors[0]["type"] == error_type
    assert errors[0]["msg"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content", "error_type"),
    [(b"{not json", "json_invalid"), (b"[1, 2]", "model_type"), (b'"s"', "model_type")],
)
async def test_body_must_be_a_json_object(running: Any, content: bytes, error_type: str) -> None:
    async with running(EchoPipeline) as client:
        r = await client.post("/", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body"]
    assert r.json()["detail"][0]["type"] == error_type


@pytest.mark.anyio
async def test_empty_body_means_no_inputs(running: Any) -> None:
    async with running(NoInput) as client:
        r = await client.post("/", content=b"")
    assert r.status_code == 200
    assert r.json() == ["ok"]


@pytest.mark.anyio
async def test_extra_inputs_can_be_ignored(running: Any) -> None:
    async with running(Lenient) as client:
        r = await client.post("/", json={"x": 5, "unknown": True})
    assert r.status_code == 200
    assert r.json() == 5


@pytest.mark.anyio
async def test_async_predict(running: Any) -> None:
    async with running(AsyncAdd) as client:
        r = await client.post("/", json={"a": 2, "b": 40})
    assert r.json() == {"sum": 42}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("mode", "status", "message"),
    [
        ("teapot", 418, "short and stout"),
        ("bad", 400, "bad mode"),
        ("other", 500, "ZeroDivisionError: boom"),
    ],
)
async def test_errors_map_to_status_codes(
    running: Any, mode: str, status: int, message: str
) -> None:
    async with running(Failing) as client:
        r = await client.post("/", json={"mode": mode})
    assert r.status_code == status
    assert r.json() == {"detail": {"msg": message}}


@pytest.mark.anyio
async def test_bytes_output_uses_the_pipeline_media_type(running: Any) -> None:
    async with running(Binary) as client:
        r = await client.post("/", json={"size": 5})
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/x-test"
    assert r.content == b"\x00\x01\x02\x03\x04"


@pytest.mark.anyio
async def test_bearer_token_protects_post_routes_only(running: Any) -> None:
    async with running(AsyncAdd, token="s3cret") as client:
        missing = await client.post("/", json={"a": 1, "b": 1})
        wrong = await client.post(
            "/", json={"a": 1, "b": 1}, headers={"Authorization": "Bearer nope"}
        )
        right = await client.post(
            "/", json={"a": 1, "b": 1}, headers={"Authorization": "Bearer s3cret"}
        )
        health = await client.get("/health")
        schema = await client.get("/openapi.json")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert right.json() == {"sum": 2}
    assert health.status_code == 200
    assert schema.status_code == 200


@pytest.mark.anyio
async def test_info_and_openapi_routes(running: Any) -> None:
    async with running(EchoPipeline) as client:
        info = await client.get("/")
        schema = await client.get("/openapi.json")
    assert info.json() == {
        "capability": "echo",
        "version": "0.1.0",
        "description": "Repeat a text.",
        "verbs": ["run"],
        "schema_url": "/openapi.json",
    }
    assert schema.headers["content-type"].startswith("application/json")
    assert schema.content == openapi_json(EchoPipeline)


@pytest.mark.anyio
async def test_name_override(running: Any) -> None:
    async with running(EchoPipeline, name="shout-echo") as client:
        info = (await client.get("/")).json()
        schema = (await client.get("/openapi.json")).json()
    assert info["capability"] == "shout-echo"
    assert schema["x-livepeer-capability"] == "shout-echo"


class SlowSetup(Pipeline):
    def __init__(self) -> None:
        self.release = threading.Event()

    def setup(self) -> None:
        if not self.release.wait(timeout=10):
            raise TimeoutError("never released")

    def predict(self) -> str:
        return "done"


@pytest.mark.anyio
async def test_health_reports_loading_then_ready(running: Any) -> None:
    pipeline = SlowSetup()
    async with running(pipeline, wait_ready=False) as client:
        loading = await client.get("/health")
        early = await client.post("/", json={})
        pipeline.release.set()
        with anyio.fail_after(5):
            while (ready := await client.get("/health")).status_code != 200:  # noqa: ASYNC110
                await anyio.sleep(0.02)
        after = await client.post("/", json={})
    assert (loading.status_code, loading.json()) == (503, {"status": "loading"})
    assert early.status_code == 503
    assert early.json() == {"detail": {"msg": "pipeline is loading"}}
    assert ready.json() == {"status": "ready"}
    assert after.json() == "done"


class BrokenSetup(Pipeline):
    async def setup(self) -> None:
        raise RuntimeError("weights missing")

    def predict(self) -> str:
        return "unreachable"


@pytest.mark.anyio
async def test_setup_failure_reports_error(running: Any) -> None:
    async with running(BrokenSetup, wait_ready=False) as client:
        with anyio.fail_after(5):
            while (health := await client.get("/health")).json()["status"] == "loading":  # noqa: ASYNC110
                await anyio.sleep(0.02)
        r = await client.post("/", json={})
    assert health.status_code == 503
    assert health.json() == {"status": "error", "error": "RuntimeError: weights missing"}
    assert r.status_code == 503
    assert "weights missing" in r.json()["detail"]["msg"]


class Rendezvous(Pipeline):
    concurrency = 2

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=5)

    def predict(self, i: int) -> int:
        self.barrier.wait()  # only returns if two predict calls run at the same time
        return i


@pytest.mark.anyio
async def test_sync_predict_runs_concurrently_in_threads(running: Any) -> None:
    results: dict[int, int] = {}
    async with running(Rendezvous()) as client:

        async def call(i: int) -> None:
            r = await client.post("/", json={"i": i})
            results[i] = r.json()

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, 1)
            tg.start_soon(call, 2)
    assert results == {1: 1, 2: 2}


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_runs_under_both_backends(running: Any) -> None:
    async with running(EchoPipeline) as client:
        r = await client.post("/", json={"text": "x", "times": 3})
        bad = await client.post("/", json={"text": "x", "times": 0})
    assert r.json()["text"] == "x x x"
    assert bad.status_code == 422


@pytest.mark.anyio
async def test_http2_over_tls_not_required_but_plain_http11_works(running: Any) -> None:
    async with running(AsyncAdd) as client:
        r = await client.post("/", json={"a": 1, "b": 2})
    assert r.http_version == "HTTP/1.1"
    assert isinstance(r, httpx.Response)
    assert r.json() == {"sum": 3}


class Small(Pipeline):
    max_body_bytes = 64

    def predict(self, text: str) -> int:
        return len(text)


@pytest.mark.anyio
async def test_oversized_bodies_get_413(running: Any) -> None:
    async with running(Small) as client:
        ok = await client.post("/", json={"text": "x" * 40})
        declared = await client.post("/", json={"text": "x" * 100})

        async def chunks() -> Any:  # no Content-Length: the limit applies while streaming
            for _ in range(10):
                yield b" " * 16

        streamed = await client.post("/", content=chunks())
    assert ok.json() == 40
    assert (declared.status_code, declared.json()) == (
        413,
        {"detail": {"msg": "request body larger than 64 bytes"}},
    )
    assert streamed.status_code == 413


class CountingSetup(Pipeline):
    def __init__(self) -> None:
        self.setups = 0

    async def setup(self) -> None:
        self.setups += 1

    def predict(self, x: int) -> int:
        return x * self.setups


@pytest.mark.anyio
async def test_mounted_without_lifespan_runs_setup_on_first_request() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from livepeer.runner import LivePipeline, serve
    from livepeer.runner.hosting import hosted

    pipeline = CountingSetup()
    # A Mount does not forward lifespan events to the inner app.
    parent = Starlette(
        routes=[Mount("/batch", app=serve(pipeline)), Mount("/live", app=serve(LivePipeline()))]
    )
    async with hosted(parent) as srv, httpx.AsyncClient(base_url=srv.url) as client:
        loading = await client.get("/batch/health")
        first = await client.post("/batch/", json={"x": 3})
        second = await client.post("/batch/run", json={"x": 4})
        live = await client.post("/live/stream/start", json={})
    assert loading.json() == {"status": "loading"}
    assert (first.json(), second.json()) == (3, 4)
    assert pipeline.setups == 1
    assert live.status_code == 503
    assert "ASGI lifespan" in live.json()["detail"]["msg"]
