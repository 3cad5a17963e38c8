"""Registration with a fake orchestrator over real HTTP: body and header shape, retries, refusals."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from livepeer.runner import RegistrationError, register, register_async, unregister_async
from livepeer.runner.hosting import bind_socket, hosted


class FakeOrchestrator:
    """Answers ``/capability/register`` with a scripted list of statuses (then 200)."""

    def __init__(self, statuses: list[int], secret: str = "orch-secret") -> None:
        self.statuses = list(statuses)
        self.secret = secret
        self.requests: list[tuple[str, str, bytes]] = []
        self.app = Starlette(
            routes=[
                Route("/capability/register", self.handle, methods=["POST"]),
                Route("/capability/unregister", self.handle, methods=["POST"]),
            ]
        )

    async def handle(self, request: Request) -> Response:
        self.requests.append(
            (request.url.path, request.headers.get("authorization", ""), await request.body())
        )
        if request.headers.get("authorization") != self.secret:
            return PlainTextResponse("invalid authorization", status_code=400)
        status = self.statuses.pop(0) if self.statuses else 200
        return PlainTextResponse("ok" if status == 200 else "try later", status_code=status)


@pytest.mark.anyio
async def test_register_sends_the_go_livepeer_shape() -> None:
    orch = FakeOrchestrator([])
    async with hosted(orch.app) as srv:
        await register_async(
            srv.url,
            "orch-secret",
            "text-reversal",
            "http://127.0.0.1:9000",
            price=7,
            capacity=3,
            description="reverse text",
            token="bearer-token",
        )
    assert len(orch.requests) == 1
    path, auth, body = orch.requests[0]
    assert (path, auth) == ("/capability/register", "orch-secret")
    assert json.loads(body) == {
        "name": "text-reversal",
        "description": "reverse text",
        "url": "http://127.0.0.1:9000",
        "capacity": 3,
        "price_per_unit": 7,
        "price_scaling": 1,
        "currency": "wei",
        "token": "bearer-token",
    }


@pytest.mark.anyio
async def test_register_retries_server_errors() -> None:
    orch = FakeOrchestrator([503, 500])
    async with hosted(orch.app) as srv:
        await register_async(srv.url, "orch-secret", "x", "http://w", retries=3, backoff=0.01)
    assert len(orch.requests) == 3


@pytest.mark.anyio
async def test_wrong_secret_is_final() -> None:
    orch = FakeOrchestrator([])
    async with hosted(orch.app) as srv:
        with pytest.raises(RegistrationError, match="refused: 400") as info:
            await register_async(srv.url, "wrong", "x", "http://w", retries=3, backoff=0.01)
    assert info.value.status_code == 400
    assert len(orch.requests) == 1


@pytest.mark.anyio
async def test_gives_up_after_the_retries() -> None:
    orch = FakeOrchestrator([503] * 10)
    async with hosted(orch.app) as srv:
        with pytest.raises(RegistrationError, match="after 3 tries: 503"):
            await register_async(srv.url, "orch-secret", "x", "http://w", retries=2, backoff=0.01)
    assert len(orch.requests) == 3


@pytest.mark.anyio
async def test_unreachable_orchestrator() -> None:
    sock = bind_socket()  # a port that accepts nothing once closed
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(RegistrationError, match="ConnectError"):
        await register_async(
            f"http://127.0.0.1:{port}", "s", "x", "http://w", retries=1, backoff=0.01
        )


@pytest.mark.anyio
async def test_blocking_register_and_unregister() -> None:
    orch = FakeOrchestrator([502])
    async with hosted(orch.app) as srv:

        def call() -> None:
            register(srv.url + "/", "orch-secret", "sentiment", "http://w", retries=2, backoff=0.01)

        await anyio.to_thread.run_sync(call)
        await unregister_async(srv.url, "orch-secret", "sentiment")
        with pytest.raises(RegistrationError, match="refused: 400"):
            await unregister_async(srv.url, "bad", "sentiment")
    paths: list[Any] = [(p, b) for p, _, b in orch.requests]
    assert paths[:2] == [("/capability/register", paths[0][1])] * 2
    assert paths[2] == ("/capability/unregister", b"sentiment")
