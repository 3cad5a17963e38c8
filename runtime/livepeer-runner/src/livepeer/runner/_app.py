"""``serve(pipeline)``: the ASGI app (starlette) that exposes a pipeline the way an orchestrator calls it.

Batch pipelines answer ``POST`` on ``/`` and on every sub-path: the orchestrator forwards
``/process/request/{route}`` to ``{registered url}/{route}`` and the route may be empty. The sub-path is ignored
(one pipeline = one capability = one operation), so clients may use any route. The body must be a JSON object
(an empty body counts as ``{}``); it is validated against the model derived from ``predict``'s signature.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from livepeer.runner._errors import PipelineError
from livepeer.runner._openapi import openapi_json
from livepeer.runner._pipeline import LivePipeline, Pipeline
from livepeer.runner._responses import (
    error_response,
    pydantic_errors,
    read_json_object,
    validation_response,
)
from livepeer.runner._runtime import Runtime
from livepeer.runner._spec import PredictSpec, predict_spec

__all__ = ["serve"]

log = logging.getLogger("livepeer.runner")


class _BatchApp:
    def __init__(self, runtime: Runtime, instance: Pipeline) -> None:
        self.runtime = runtime
        self.instance = instance
        self.spec: PredictSpec = predict_spec(type(instance))
        self.predict: Callable[..., Any] = instance.predict  # type: ignore[attr-defined]
        self.limiter = anyio.CapacityLimiter(max(1, type(instance).concurrency))
        spec = self.spec
        self.output = TypeAdapter(spec.output_type) if spec.returns_value else None
        self.item = TypeAdapter(spec.item_type) if spec.streams else None
        self.fields = list(spec.input_model.model_fields)
        self.verbs = (["run"] if spec.returns_value else []) + (["stream"] if spec.streams else [])

    async def info(self, request: Request) -> Response:
        return JSONResponse(self.runtime.info_body(self.verbs))

    async def handle(self, request: Request) -> Response:
        runtime = self.runtime
        denied = runtime.check_auth(request)
        if denied is not None:
            return denied
        await runtime.ensure_setup()
        unavailable = runtime.not_ready()
        if unavailable is not None:
            return unavailable
        data = await read_json_object(request, type(self.instance).max_body_bytes)
        if isinstance(data, Response):
            return data
        try:
            model = self.spec.input_model.model_validate(data)
        except PydanticValidationError as exc:
            return validation_response(pydantic_errors(exc, ("body",)))
        kwargs = {name: getattr(model, name) for name in self.fields}
        try:
            if self.spec.kind == "sync":
                call = functools.partial(self.predict, **kwargs)
                result = await anyio.to_thread.run_sync(call, limiter=self.limiter)
            else:
                result = self.predict(**kwargs)
                if inspect.isawaitable(result):
                    result = await result
        except PipelineError as exc:
            return error_response(exc.status_code, exc.message)
        except Exception as exc:
            log.exception("predict() of %s failed", runtime.name)
            return error_response(500, f"{type(exc).__name__}: {exc}")
        if _is_stream(result):
            events = self._sse(result)
            # When the client goes away, Starlette stops iterating the body but leaves the generator
            # suspended; closing it here (background tasks run after a disconnect too) releases the
            # pipeline's generator now instead of whenever the garbage collector finalises it.
            return StreamingResponse(
                events,
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                background=BackgroundTask(_close, events),
            )
        if isinstance(result, (bytes, bytearray, memoryview)):
            return Response(bytes(result), media_type=type(self.instance).output_media_type)
        try:
            adapter = self.output or _ANY
            body = adapter.dump_json(result, warnings=False)
        except Exception as exc:
            log.exception("the output of %s is not JSON-serialisable", runtime.name)
            return error_response(500, f"output is not JSON-serialisable: {exc}")
        return Response(body, media_type="application/json")

    async def _sse(self, result: Any) -> AsyncGenerator[bytes, None]:
        adapter = self.item or _ANY
        items = self._iterate(result)
        try:
            async for item in items:
                yield b"data: " + adapter.dump_json(item, warnings=False) + b"\n\n"
        except Exception as exc:
            log.exception("the stream of %s failed", self.runtime.name)
            if isinstance(exc, PipelineError):
                message = exc.message
            else:
                message = f"{type(exc).__name__}: {exc}"
            error = json.dumps({"detail": {"msg": message}}, separators=(",", ":"))
            yield b"event: error\ndata: " + error.encode() + b"\n\n"
        finally:
            # `async for` never closes the iterator it loops over; the pipeline's generator must not
            # outlive the response.
            with anyio.CancelScope(shield=True):
                await items.aclose()
        yield b"data: [DONE]\n\n"

    async def _iterate(self, result: Any) -> AsyncGenerator[Any, None]:
        if hasattr(result, "__aiter__"):
            iterator = result.__aiter__()
            try:
                async for item in iterator:
                    yield item
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
            return
        sync_iter: Iterator[Any] = iter(result)
        done = object()
        try:
            while True:
                item = await anyio.to_thread.run_sync(next, sync_iter, done, limiter=self.limiter)
                if item is done:
                    return
                yield item
        finally:
            close = getattr(sync_iter, "close", None)
            if close is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(close, limiter=self.limiter)


_ANY: TypeAdapter[Any] = TypeAdapter(Any)


async def _close(events: AsyncGenerator[bytes, None]) -> None:
    # A coroutine function on purpose: BackgroundTask runs anything else in a thread, where
    # `events.aclose()` would only create a coroutine that nobody awaits.
    await events.aclose()


def _is_stream(value: Any) -> bool:
    if isinstance(value, (str, bytes, bytearray, memoryview, dict, list, tuple, BaseModel)):
        return False
    return hasattr(value, "__aiter__") or inspect.isgenerator(value) or isinstance(value, Iterator)


def serve(
    pipeline: type[Pipeline] | type[LivePipeline] | Pipeline | LivePipeline,
    *,
    name: str | None = None,
    token: str | None = None,
) -> Starlette:
    """Build the ASGI app for a pipeline class or instance: ``app = serve(TextReversal)``.

    ``token``: when set, POST routes require ``Authorization: Bearer <token>`` (the token given at
    registration, which the orchestrator forwards). ``GET /health``, ``/`` and ``/openapi.json`` stay open.
    """
    instance = pipeline() if isinstance(pipeline, type) else pipeline
    cls = type(instance)
    runtime = Runtime(instance, name or cls.capability_name(), token)
    schema = openapi_json(cls, name=runtime.name)

    async def openapi(request: Request) -> Response:
        return Response(schema, media_type="application/json")

    routes: list[Route] = [
        Route("/health", runtime.health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    on_shutdown: Callable[[], Awaitable[None]] | None = None
    if isinstance(instance, Pipeline):
        batch = _BatchApp(runtime, instance)
        routes.append(Route("/", batch.info, methods=["GET"]))
        routes.append(Route("/", batch.handle, methods=["POST"]))
        routes.append(Route("/{path:path}", batch.handle, methods=["POST"]))
    else:
        from livepeer.runner._live import LiveApp

        live = LiveApp(runtime, instance)
        routes.extend(live.routes())
        on_shutdown = live.shutdown

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            runtime.task_group = tg
            tg.start_soon(runtime.run_setup)
            try:
                yield
            finally:
                if on_shutdown is not None:
                    with anyio.move_on_after(5, shield=True):
                        await on_shutdown()
                runtime.task_group = None
                tg.cancel_scope.cancel()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runtime = runtime
    return app
