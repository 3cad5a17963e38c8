"""``Runtime``: the lifecycle a batch app and a live app share (setup in the background, health, auth).

Its own module so ``_live`` does not import ``_app`` (which imports ``_live``).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Literal

import anyio
import anyio.abc
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livepeer.runner._pipeline import LivePipeline, Pipeline, _Described
from livepeer.runner._responses import error_response

__all__ = ["Runtime", "Status", "maybe_await"]

log = logging.getLogger("livepeer.runner")

Status = Literal["loading", "ready", "error"]
_DEFAULT_SETUP = _Described.setup


async def maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class Runtime:
    """Lifecycle shared by batch and live apps: setup in the background, health, the task group."""

    def __init__(self, instance: Pipeline | LivePipeline, name: str, token: str | None) -> None:
        self.instance = instance
        self.cls = type(instance)
        self.name = name
        self.token = token
        self.status: Status = "loading"
        self.error: str | None = None
        self.task_group: anyio.abc.TaskGroup | None = None
        self._setup_started = False
        self._setup_done: anyio.Event | None = None

    async def run_setup(self) -> None:
        self._setup_started = True
        done = self._setup_done = anyio.Event()
        if getattr(self.cls.setup, "__func__", self.cls.setup) is _DEFAULT_SETUP:
            self.status = "ready"  # nothing to load: ready before the first request can arrive
            done.set()
            return
        try:
            setup = self.instance.setup
            if inspect.iscoroutinefunction(setup):
                await setup()
            else:
                await maybe_await(await anyio.to_thread.run_sync(setup))
        except Exception as exc:
            log.exception("setup() of %s failed", self.name)
            self.status = "error"
            self.error = f"{type(exc).__name__}: {exc}"
        else:
            self.status = "ready"
        finally:
            done.set()

    async def ensure_setup(self) -> None:
        """Run setup inline when the server skipped the ASGI lifespan (e.g. a bare ``Mount``)."""
        if not self._setup_started:
            await self.run_setup()
        elif self._setup_done is not None and self.status == "loading" and self.task_group is None:
            await self._setup_done.wait()

    def check_auth(self, request: Request) -> Response | None:
        if self.token is None:
            return None
        if request.headers.get("authorization", "") != f"Bearer {self.token}":
            return error_response(401, "Invalid bearer token", {"WWW-Authenticate": "Bearer"})
        return None

    def not_ready(self) -> Response | None:
        if self.status == "ready":
            return None
        if self.status == "loading":
            return error_response(503, "pipeline is loading")
        return error_response(503, f"pipeline setup failed: {self.error}")

    async def health(self, request: Request) -> Response:
        body: dict[str, Any] = {"status": self.status}
        if self.error is not None:
            body["error"] = self.error
        return JSONResponse(body, status_code=200 if self.status == "ready" else 503)

    def info_body(self, verbs: list[str]) -> dict[str, Any]:
        return {
            "capability": self.name,
            "version": self.cls.version,
            "description": self.cls.capability_description(),
            "verbs": verbs,
            "schema_url": "/openapi.json",
        }
