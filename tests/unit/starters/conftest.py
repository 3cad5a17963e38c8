"""Scripted loopback servers for the live starters and the AI route, driven only through the public API.

* ``ScriptedOrch``: one TLS port (hypercorn, h2 + http/1.1) like go-livepeer: gRPC ``GetOrchestrator``
  answered from the attributes (price, transcoder, capabilities; every answer carries a new
  ``recipient_rand_hash`` and auth token, so a test can tell which answer a payment used), and HTTP routes
  from ``routes[(method, path)]`` (a callable returning a starlette ``Response``; unknown paths 404,
  trickle channel paths under ``/ch/`` 200). Every request is recorded.
* ``ScriptedSigner``: ``/sign-orchestrator-info`` and ``/generate-live-payment`` answering from a queue of
  statuses (200 when empty), recording bodies.
* ``payment_clock``: payment cycles on demand. The session waits ``payment_interval`` seconds between
  cycles with ``anyio.sleep``; a sleep of a second or more made directly by ``livepeer.client`` code waits
  for ``await clock.cycle(session)`` instead, which lets one cycle run and returns once the loop is back
  asleep or the session failed. Trickle's own timers (keepalives) are untouched.

Servers run in a background thread (a blocking portal), bind 127.0.0.1 and stop at fixture teardown.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from anyio.from_thread import start_blocking_portal
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from livepeer.devnet._grpc import GrpcError, GrpcStatus, is_grpc, serve_unary
from livepeer.devnet._keys import self_signed_cert
from livepeer.runner.hosting import hosted

LV2V_CAP = 35  # live-video-to-video in go-livepeer's capability table (core/capabilities.go)
TEXT_TO_IMAGE_CAP = 27


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "LIVEPEER_TOKEN",
        "LIVEPEER_SIGNER_URL",
        "LIVEPEER_DISCOVERY_URL",
        "LIVEPEER_ORCH_URL",
        "LIVEPEER_PRIVATE_KEY",
        "LIVEPEER_LOG",
        "LIVEPEER_PINS",
    ):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Request, bytes], "Response | Awaitable[Response]"]


@dataclass
class ScriptedOrch:
    price: int = 0  # pricePerUnit of GetOrchestrator's price_info
    pixels: int = 1  # its pixelsPerUnit
    models: dict[int, dict[str, int]] = field(default_factory=dict)  # cap id -> model -> capacity
    transcoder: str | None = None  # None: this orchestrator's own URL
    grpc_error: str = ""  # non-empty: GetOrchestrator fails with this message
    # GetOrchestrator call n answers info(answers[n-1]) (the last repeats); empty: info(n)
    answers: list[int] = field(default_factory=list)
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    info_calls: int = 0
    url: str = ""

    def paths(self, method: str | None = None) -> list[str]:
        return [s.path for s in self.seen if method is None or s.method == method]

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]

    def info(self, n: int) -> bytes:
        """The OrchestratorInfo of the ``n``-th GetOrchestrator answer (1-based)."""
        from livepeer.client._proto import lp_rpc_pb2 as pb

        info = pb.OrchestratorInfo(
            transcoder=self.url if self.transcoder is None else self.transcoder
        )
        info.price_info.pricePerUnit = self.price
        info.price_info.pixelsPerUnit = self.pixels
        if self.price:
            info.ticket_params.recipient = b"\x02" * 20
            info.ticket_params.face_value = (1000).to_bytes(2, "big")
            info.ticket_params.win_prob = (((1 << 256) - 1) // 10).to_bytes(32, "big")
            info.ticket_params.seed = b"\x07"
            info.ticket_params.expiration_block = (1040).to_bytes(2, "big")
        info.ticket_params.recipient_rand_hash = n.to_bytes(32, "big")
        info.auth_token.token = f"tok-{n}".encode()
        info.auth_token.session_id = f"sess-{n}"
        for cap, models in self.models.items():
            info.capabilities.capacities[cap] = 1
            per = info.capabilities.constraints.PerCapability[cap]
            for model, capacity in models.items():
                per.models[model].capacity = capacity
        return bytes(info.SerializeToString())

    async def _get_orchestrator(self, raw: bytes) -> bytes:
        self.info_calls += 1
        if self.grpc_error:
            raise GrpcError(GrpcStatus.UNKNOWN, self.grpc_error)
        if self.answers:
            return self.info(self.answers[min(self.info_calls, len(self.answers)) - 1])
        return self.info(self.info_calls)

    def app(self) -> Callable[..., Awaitable[None]]:
        async def http(request: Request) -> Response:
            body = await request.body()
            path = request.url.path
            self.seen.append(Seen(request.method, path, dict(request.headers), body))
            handler = self.routes.get((request.method, path))
            if handler is None:
                if path.startswith("/ch/"):  # trickle channels: accept and drop
                    latest = {"Lp-Trickle-Latest": "0"} if path.endswith("/next") else {}
                    return Response(status_code=200, headers=latest)
                return PlainTextResponse("404 page not found", status_code=404)
            out = handler(request, body)
            return out if isinstance(out, Response) else await out

        methods = ["GET", "POST", "DELETE", "PUT"]
        starlette = Starlette(routes=[Route("/{path:path}", http, methods=methods)])

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            if is_grpc(scope):
                await serve_unary(
                    scope,
                    receive,
                    send,
                    {"/net.Orchestrator/GetOrchestrator": self._get_orchestrator},
                )
                return
            await starlette(scope, receive, send)

        return asgi


def lv2v_reply(orch: ScriptedOrch, **override: object) -> dict[str, object]:
    """A well-formed LV2V start reply whose channels live under ``/ch/`` on ``orch``."""
    reply: dict[str, object] = {
        "manifest_id": "mid-1",
        "publish_url": f"{orch.url}/ch/pub",
        "subscribe_url": f"{orch.url}/ch/sub",
        "control_url": f"{orch.url}/ch/control",
        "events_url": f"{orch.url}/ch/events",
    }
    reply.update(override)
    return {k: v for k, v in reply.items() if v is not None}


@dataclass
class ScriptedSigner:
    statuses: list[int] = field(default_factory=list)  # /generate-live-payment, consumed in order
    bodies: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def infos(self) -> list[bytes]:
        """The OrchestratorInfo of every payment request, in order."""
        return [base64.b64decode(b["orchestrator"]) for b in self.bodies]

    def app(self) -> Starlette:
        async def info(request: Request) -> Response:
            return JSONResponse({"address": "0x" + "Ab" * 20, "signature": "0x" + "11" * 65})

        async def payment(request: Request) -> Response:
            body = await request.json()
            self.bodies.append(body)
            status = self.statuses.pop(0) if self.statuses else 200
            if status != 200:
                return JSONResponse({"error": {"message": f"status {status}"}}, status_code=status)
            n = len(self.bodies)
            return JSONResponse(
                {
                    "payment": base64.b64encode(f"pay-{n}".encode()).decode(),
                    "segCreds": base64.b64encode(f"seg-{n}".encode()).decode(),
                    "state": {"State": base64.b64encode(f"s{n}".encode()).decode(), "Sig": "c2ln"},
                }
            )

        return Starlette(
            routes=[
                Route("/sign-orchestrator-info", info, methods=["POST"]),
                Route("/generate-live-payment", payment, methods=["POST"]),
            ]
        )


@dataclass
class Servers:
    orch: Callable[..., ScriptedOrch]
    signer: Callable[..., ScriptedSigner]


@pytest.fixture
def servers() -> Iterator[Servers]:
    """``orch = servers.orch(price=5)``, ``signer = servers.signer()``: started at once, stopped at teardown."""
    with start_blocking_portal() as portal, ExitStack() as stack:

        def orch(**kw: Any) -> ScriptedOrch:
            o = ScriptedOrch(**kw)
            cert = self_signed_cert("localhost")
            stack.callback(cert.remove)
            srv = stack.enter_context(
                portal.wrap_async_context_manager(hosted(o.app(), tls=cert.files))
            )
            o.url = srv.url
            return o

        def signer(**kw: Any) -> ScriptedSigner:
            s = ScriptedSigner(**kw)
            srv = stack.enter_context(portal.wrap_async_context_manager(hosted(s.app())))
            s.url = srv.url
            return s

        yield Servers(orch, signer)


class PaymentClock:
    """Payment cycles on demand (see the module docstring)."""

    def __init__(self, real_sleep: Callable[..., Awaitable[Any]]) -> None:
        self._real_sleep = real_sleep
        self.entered = 0  # long sleeps started so far
        self.release = anyio.Event()
        self.intervals: list[float] = []

    async def sleep(self, delay: float, result: Any = None) -> Any:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if delay < 1.0 or not caller.startswith("livepeer.client"):
            await self._real_sleep(delay)
            return result
        self.intervals.append(delay)
        release = self.release
        self.entered += 1
        await release.wait()
        return result

    async def cycle(self, session: Any) -> None:
        """Let one payment cycle run; return when the loop sleeps again or the session failed."""
        with anyio.fail_after(10):
            while (
                self.entered == 0 and not session.closed
            ):  # the loop has not reached its sleep yet
                await self._real_sleep(0.005)
            if session.closed:
                return
            entered = self.entered
            release, self.release = self.release, anyio.Event()
            release.set()
            while self.entered == entered and not session.closed:
                await self._real_sleep(0.005)


@pytest.fixture
def payment_clock(monkeypatch: pytest.MonkeyPatch) -> PaymentClock:
    clock = PaymentClock(anyio.sleep)
    monkeypatch.setattr(anyio, "sleep", clock.sleep)
    return clock
