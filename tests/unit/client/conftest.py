"""Fixtures for client unit tests: config tokens and a small fake BYOC orchestrator (real HTTP)."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from livepeer.client import _signer
from livepeer.runner.hosting import hosted


def make_token(**fields: object) -> str:
    return base64.b64encode(json.dumps(fields).encode()).decode()


@pytest.fixture
def token_factory() -> Callable[..., str]:
    return make_token


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "LIVEPEER_TOKEN",
        "LIVEPEER_SIGNER_URL",
        "LIVEPEER_DISCOVERY_URL",
        "LIVEPEER_ORCH_URL",
        "LIVEPEER_PRIVATE_KEY",
        "LIVEPEER_LOG",
    ):
        monkeypatch.delenv(name, raising=False)
    _signer._identity_cache.clear()


@dataclass
class FakeOrch:
    """A BYOC orchestrator stand-in; tweak the attributes to change its behaviour."""

    capabilities: dict[str, int] = field(default_factory=lambda: {"text-reversal": 2})
    price: int = 0
    balance: int = 0
    onchain: bool = False  # on-chain JobTokens carry ticket params (and jobs must be signed)
    request_status: int = 200
    request_statuses: list[int] = field(default_factory=list)  # consumed first, one per request
    request_body: bytes = b""
    sse_lines: list[str] | None = None
    low_balance_until_paid: bool = False
    token_calls: int = 0
    token_seq: int = 0
    token_headers: list[str] = field(default_factory=list)
    request_calls: int = 0
    payments: list[str] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    runners: list[dict[str, Any]] = field(default_factory=list)
    app_price: int = 0
    app_calls: list[dict[str, Any]] = field(default_factory=list)
    stops: int = 0
    sessions: int = 0
    url: str = ""

    def app(self) -> Starlette:
        async def token(request: Request) -> Response:
            self.token_calls += 1
            self.token_headers.append(request.headers.get("livepeer-eth-address", ""))
            cap = request.headers.get("livepeer-capability", "")
            body: dict[str, Any] = {
                "price": {"pricePerUnit": self.price, "pixelsPerUnit": 1},
                "balance": self.balance,
                "service_addr": self.url,
            }
            if self.capabilities.get(cap):
                body["available_capacity"] = self.capabilities[cap]
            if self.onchain:
                # EV = 1000 x (2^256-1)/10 / (2^256-1) = 100 wei per ticket (zero at price 0, as upstream).
                priced = self.price > 0
                fv = (1000).to_bytes(2, "big") if priced else b""
                wp = (((1 << 256) - 1) // 10).to_bytes(32, "big") if priced else b""
                self.token_seq += 1
                tp = {
                    "recipient": b"\x02" * 20,
                    "face_value": fv,
                    "win_prob": wp,
                    "recipient_rand_hash": self.token_seq.to_bytes(32, "big"),
                    "seed": b"\x07",
                    "expiration_block": (1040).to_bytes(2, "big"),
                }
                body["ticket_params"] = {
                    k: base64.b64encode(v).decode() for k, v in tp.items() if v
                } | {"expiration_params": {"creation_round": 5}}
            return JSONResponse(body)

        async def process(request: Request) -> Response:
            self.request_calls += 1
            job = json.loads(base64.b64decode(request.headers["livepeer"]))
            self.jobs.append(job)
            payment = request.headers.get("livepeer-payment")
            if payment:
                self.payments.append(payment)
            raw = await request.body()
            self.bodies.append(raw)
            self.content_types.append(request.headers.get("content-type", ""))
            if self.low_balance_until_paid and not payment:
                return PlainTextResponse("Insufficient balance for request", status_code=400)
            status = self.request_statuses.pop(0) if self.request_statuses else self.request_status
            if status != 200:
                return PlainTextResponse(self.request_body.decode() or "error", status_code=status)
            if self.sse_lines is not None:
                lines = list(self.sse_lines)

                async def gen() -> AsyncIterator[bytes]:
                    for line in lines:
                        yield (line + "\n").encode()

                return StreamingResponse(
                    gen(),
                    media_type="text/event-stream",
                    headers={"Livepeer-Payment-Balance": "12"},
                )
            if self.request_body:
                return Response(self.request_body, media_type="application/octet-stream")
            data = json.loads(raw or b"{}")
            text = str(data.get("text", ""))
            return JSONResponse(
                {"original": text, "reversed": text[::-1]}, headers={"Livepeer-Balance": "99"}
            )

        async def discovery(request: Request) -> Response:
            if not self.runners:
                return PlainTextResponse("live runners are not supported", status_code=404)
            runners = [{**r, "url": self.url + r["url"]} for r in self.runners]
            return JSONResponse([{"address": self.url, "runners": runners}])

        def challenge() -> Response:
            from livepeer.client._proto import lp_rpc_pb2 as pb

            info = pb.OrchestratorInfo(transcoder=self.url)
            info.price_info.pricePerUnit = self.app_price
            info.price_info.pixelsPerUnit = 1
            info.auth_token.token = b"t"
            params = base64.b64encode(info.SerializeToString()).decode()
            return JSONResponse(
                {
                    "payment_params": params,
                    "orchestrator": self.url,
                    "manifest_id": "m-1",
                    "payment_url": self.url + "/pay",
                },
                status_code=402,
            )

        async def app(request: Request) -> Response:
            body = await request.json()
            self.app_calls.append(
                {
                    "path": request.url.path,
                    "body": body,
                    "payer": request.headers.get("livepeer-payer-address"),
                    "payment": request.headers.get("livepeer-payment"),
                }
            )
            if self.app_price and not request.headers.get("livepeer-payment"):
                return challenge()
            return JSONResponse({"echo": body, "path": request.url.path})

        async def session(request: Request) -> Response:
            runner = request.path_params["runner"]
            if self.app_price and not request.headers.get("livepeer-payment"):
                return challenge()
            self.sessions += 1
            return JSONResponse(
                {
                    "session_id": "s1",
                    "app_url": f"/apps/{runner}/session/s1/app",
                    "control_url": f"/apps/{runner}/session/s1/control",
                }
            )

        async def stop(request: Request) -> Response:
            self.stops += 1
            return Response(status_code=204)

        return Starlette(
            routes=[
                Route("/process/token", token),
                Route("/process/request/{path:path}", process, methods=["POST"]),
                Route("/discovery", discovery),
                Route("/apps/{runner}/app", app, methods=["POST"]),
                Route("/apps/{runner}/session", session, methods=["POST"]),
                Route("/apps/{runner}/session/{sid}/app/", app, methods=["POST"]),
                Route("/apps/{runner}/session/{sid}/stop", stop, methods=["POST"]),
            ]
        )


@pytest.fixture
def fake_orchs() -> Iterator[Callable[[int], list[FakeOrch]]]:
    """``orchs = fake_orchs(3)``: fake orchestrators on loopback HTTP, served from a background
    thread so that both sync and async clients can call them."""
    with start_blocking_portal() as portal, ExitStack() as stack:

        def start(n: int) -> list[FakeOrch]:
            out = []
            for _ in range(n):
                orch = FakeOrch()
                srv = stack.enter_context(portal.wrap_async_context_manager(hosted(orch.app())))
                orch.url = srv.url
                out.append(orch)
            return out

        yield start


@pytest.fixture
def dead_url() -> str:
    """A loopback URL nobody listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@dataclass
class FakeSigner:
    """A remote-signer stand-in: answers from queues of status codes (200 when empty)."""

    payment_statuses: list[int] = field(default_factory=list)
    byoc_sign: bool = True
    info_calls: int = 0
    payment_bodies: list[dict[str, Any]] = field(default_factory=list)
    sign_calls: int = 0
    discovery: list[dict[str, Any]] | None = None
    url: str = ""

    def app(self) -> Starlette:
        # Every handler reads its request body: one left unread makes the server close the kept-alive
        # connection after the response, and the client's next request on it then fails now and then
        # (RemoteProtocolError), which Go's net/http avoids by draining the body or sending "Connection: close".
        async def info(request: Request) -> Response:
            await request.body()
            self.info_calls += 1
            return JSONResponse({"address": "0x" + "Ab" * 20, "signature": "0x" + "11" * 65})

        async def payment(request: Request) -> Response:
            body = await request.json()
            self.payment_bodies.append(body)
            status = self.payment_statuses.pop(0) if self.payment_statuses else 200
            if status != 200:
                return JSONResponse({"error": {"message": f"status {status}"}}, status_code=status)
            n = len(self.payment_bodies)
            return JSONResponse(
                {
                    "payment": base64.b64encode(f"pay-{n}".encode()).decode(),
                    "segCreds": base64.b64encode(b"seg").decode(),
                    "state": {"State": base64.b64encode(f"s{n}".encode()).decode(), "Sig": "c2ln"},
                }
            )

        async def sign_job(request: Request) -> Response:
            await request.body()
            self.sign_calls += 1
            if not self.byoc_sign:
                return PlainTextResponse("404 page not found", status_code=404)
            return JSONResponse({"sender": "0x" + "Ab" * 20, "signature": "0x" + "22" * 65})

        async def discover(request: Request) -> Response:
            if self.discovery is None:
                return PlainTextResponse("not found", status_code=404)
            return JSONResponse(self.discovery)

        return Starlette(
            routes=[
                Route("/sign-orchestrator-info", info, methods=["POST"]),
                Route("/generate-live-payment", payment, methods=["POST"]),
                Route("/sign-byoc-job", sign_job, methods=["POST"]),
                Route("/discover-orchestrators", discover),
            ]
        )


@pytest.fixture
def fake_signer() -> Iterator[FakeSigner]:
    with start_blocking_portal() as portal:
        signer = FakeSigner()
        with portal.wrap_async_context_manager(hosted(signer.app())) as srv:
            signer.url = srv.url
            yield signer
