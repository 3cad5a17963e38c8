"""Live-runner apps on the orchestrator (PROTOCOL.md §10): ``GET /discovery``, ``/apps/{runner}/…`` with the 402
payment challenge, the session reverse proxy, session payments and stop, and ``POST /refresh-payment``.

The devnet exposes three runners backed by the ``text-reversal`` sample worker:

- ``reverse`` (app ``text-reversal/devnet``), persistent, priced per second: ``POST {svc}/apps/reverse/session``
  then ``POST {app_url}/`` with ``{"text": ...}``;
- ``reverse-once`` (app ``text-reversal/devnet-once``), single-shot: ``ANY {svc}/apps/reverse-once/app/{path}``
  admits (402 challenge on-chain), proxies one call and keeps nothing;
- ``reverse-fixed`` (app ``text-reversal/devnet-fixed``), persistent with a fixed price: its session payments
  answer 409, as go-livepeer does for fixed-price runners.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from livepeer.devnet._live import _Reject

if TYPE_CHECKING:
    from livepeer.devnet._orchestrator import Orchestrator

__all__ = ["AppRoutes", "LiveRunner"]

ANY_METHOD = ["GET", "POST", "PUT", "DELETE", "PATCH"]


@dataclass
class LiveRunner:
    name: str
    app: str
    worker: str  # BYOC sample name whose worker URL backs the runner
    price_per_second: int = 0
    capacity: int = 2
    version: str = "0.1.0"
    mode: str = "persistent"  # or "single-shot"
    unit: str = "seconds"  # or "fixed"


@dataclass
class AppSession:
    id: str
    runner: str
    sender: str


class AppRoutes:
    """Routes of §10 for one orchestrator."""

    def __init__(self, orch: Orchestrator, runners: list[LiveRunner]) -> None:
        self.orch = orch
        self.runners = {r.name: r for r in runners}
        self.sessions: dict[str, AppSession] = {}
        # manifest id -> runner name, for challenges not yet redeemed.
        self.challenges: dict[str, str] = {}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/discovery", self.discovery, methods=["GET"]),
            Route("/refresh-payment", self.refresh_payment, methods=["POST"]),
            Route("/apps/{runner}/session", self.create_session, methods=["POST"]),
            Route("/apps/{runner}/session/{sid}/payment", self.session_payment, methods=["POST"]),
            Route("/apps/{runner}/session/{sid}/stop", self.stop_session, methods=["POST"]),
            Route("/apps/{runner}/session/{sid}/app/{path:path}", self.proxy, methods=ANY_METHOD),
            Route("/apps/{runner}/session/{sid}/app", self.proxy, methods=ANY_METHOD),
            Route("/apps/{runner}/app/{path:path}", self.single_shot, methods=ANY_METHOD),
            Route("/apps/{runner}/app", self.single_shot, methods=ANY_METHOD),
        ]

    def reset(self) -> None:
        self.sessions.clear()
        self.challenges.clear()

    # -- discovery ----------------------------------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        if not self.runners:
            return PlainTextResponse("live runners are not supported", status_code=404)
        return JSONResponse([{"address": self.orch.service_url, "runners": self.runner_entries()}])

    def runner_entries(self) -> list[dict[str, Any]]:
        """The runner objects of ``GET /discovery`` (also listed by the signer's discovery)."""
        svc = self.orch.service_url
        runners = []
        for r in self.runners.values():
            used = sum(1 for s in self.sessions.values() if s.runner == r.name)
            tail = "session" if r.mode == "persistent" else "app"
            entry: dict[str, Any] = {
                "url": f"{svc}/apps/{r.name}/{tail}",
                "gpu": {"id": "devnet-gpu-0", "name": "Devnet Virtual GPU", "vram_mb": 0},
                "app": r.app,
                "version": r.version,
                "metadata": {},
                "mode": r.mode,
                "capacity": r.capacity,
                "capacity_used": used,
                "capacity_available": max(0, r.capacity - used),
            }
            if self.orch.options.onchain:
                entry["price_info"] = {
                    "price": self._price(r),
                    "currency": "wei",
                    "unit": r.unit,
                }
            runners.append(entry)
        return runners

    def _price(self, runner: LiveRunner) -> int:
        return runner.price_per_second * self.orch.faults.price_multiplier

    # -- sessions -----------------------------------------------------------------------------------------

    def _challenge(self, runner: LiveRunner, manifest: str, payer: bytes) -> dict[str, Any]:
        from livepeer.client._proto import lp_rpc_pb2 as pb

        o = self.orch
        price = (self._price(runner), 1)
        info = o.orchestrator_info(sender=payer)
        info.price_info.CopyFrom(pb.PriceInfo(pricePerUnit=price[0], pixelsPerUnit=price[1]))
        info.ticket_params.CopyFrom(o.tickets.ticket_params(price, payer))
        self.challenges[manifest] = runner.name
        return {
            "payment_params": base64.b64encode(info.SerializeToString()).decode(),
            "orchestrator": o.service_url,
            "manifest_id": manifest,
            "payment_url": f"{o.service_url}/apps/{runner.name}/session/{manifest}/payment",
        }

    async def _admit(self, request: Request) -> tuple[LiveRunner, str, str] | Response:
        """Capacity and (on-chain) the 402 challenge: (runner, session id, sender) or the refusal."""
        o = self.orch
        runner = self.runners.get(request.path_params["runner"])
        if runner is None:
            return PlainTextResponse("runner not found", status_code=404)
        used = sum(1 for s in self.sessions.values() if s.runner == runner.name)
        if used >= runner.capacity or o.faults.no_capacity:
            return PlainTextResponse("no capacity", status_code=503)
        if not o.options.onchain:
            return runner, os.urandom(8).hex(), ""
        if "livepeer-payment" not in request.headers:
            payer = request.headers.get("livepeer-payer-address", "")
            if not (payer.startswith("0x") and len(payer) == 42):
                return JSONResponse(
                    {"error": "Livepeer-Payer-Address header required"}, status_code=402
                )
            challenge = self._challenge(runner, os.urandom(8).hex(), bytes.fromhex(payer[2:]))
            return JSONResponse(challenge, status_code=402)
        try:
            seg = o.live._segment(request)
            manifest = seg.manifestId.decode(errors="replace")
            if self.challenges.get(manifest) != runner.name:
                raise _Reject(403, "manifest id does not match a payment challenge")
            sender, _credit = o.live._payment(request, seg, manifest)
        except _Reject as exc:
            return exc.response()
        self.challenges.pop(manifest, None)
        return runner, manifest, sender

    async def create_session(self, request: Request) -> Response:
        admitted = await self._admit(request)
        if isinstance(admitted, Response):
            return admitted
        runner, sid, sender = admitted
        if runner.mode != "persistent":
            return PlainTextResponse("runner is single-shot: call /app", status_code=400)
        self.sessions[sid] = AppSession(id=sid, runner=runner.name, sender=sender)
        base = f"{self.orch.service_url}/apps/{runner.name}/session/{sid}"
        return JSONResponse(
            {"session_id": sid, "app_url": f"{base}/app", "control_url": f"{base}/stop"}
        )

    async def single_shot(self, request: Request) -> Response:
        """One proxied call; the admission is used up by it and nothing is kept."""
        admitted = await self._admit(request)
        if isinstance(admitted, Response):
            return admitted
        runner, _sid, _sender = admitted
        if runner.mode != "single-shot":
            return PlainTextResponse("runner is persistent: open a session", status_code=400)
        return await self._forward(request, runner, await request.body())

    def _session(self, request: Request) -> AppSession | Response:
        session = self.sessions.get(request.path_params["sid"])
        if session is None or session.runner != request.path_params["runner"]:
            return PlainTextResponse("session not found", status_code=404)
        return session

    async def session_payment(self, request: Request) -> Response:
        from livepeer.client._proto import lp_rpc_pb2 as pb

        session = self._session(request)
        if isinstance(session, Response):
            return session
        if self.runners[session.runner].unit == "fixed":
            return PlainTextResponse("fixed-price runner: no session payments", status_code=409)
        o = self.orch
        try:
            seg = o.live._segment(request)
            if seg.manifestId.decode(errors="replace") != session.id:
                raise _Reject(403, "manifest id mismatch")
            sender, _credit = o.live._payment(request, seg, session.id)
        except _Reject as exc:
            return exc.response()
        result = pb.PaymentResult(info=o.orchestrator_info(sender=bytes.fromhex(sender[2:])))
        return Response(result.SerializeToString(), media_type="application/octet-stream")

    async def stop_session(self, request: Request) -> Response:
        session = self._session(request)
        if isinstance(session, Response):
            return session
        self.sessions.pop(session.id, None)
        return Response(status_code=204)

    async def refresh_payment(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            manifest = str(body["manifest_id"])
            if not str(body.get("sender", "")).startswith("0x"):
                raise ValueError("sender")
        except (ValueError, KeyError, TypeError):
            return PlainTextResponse("invalid request", status_code=400)
        session = self.sessions.get(manifest)
        name = session.runner if session is not None else self.challenges.get(manifest)
        runner = self.runners.get(name or "")
        if runner is None or not self.orch.options.onchain:
            return PlainTextResponse("no session price", status_code=409)
        try:
            payer = bytes.fromhex(str(body["sender"])[2:])
        except ValueError:
            return PlainTextResponse("invalid request", status_code=400)
        return JSONResponse(self._challenge(runner, manifest, payer))

    async def proxy(self, request: Request) -> Response:
        session = self._session(request)
        if isinstance(session, Response):
            return session
        return await self._forward(request, self.runners[session.runner], await request.body())

    async def _forward(self, request: Request, runner: LiveRunner, content: bytes) -> Response:
        o = self.orch
        worker = o.devnet_workers.get(runner.worker, "")
        path = request.path_params.get("path", "")
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("content-type", "accept", "authorization")
        }
        try:
            if o.faults.worker_dead or not worker:
                raise httpx.ConnectError("runner unreachable")
            upstream = await o.http.send(
                o.http.build_request(
                    request.method,
                    f"{worker}/{path}",
                    content=content,
                    headers=headers,
                    params=request.query_params,
                ),
                stream=True,
            )
        except httpx.HTTPError as exc:
            return PlainTextResponse(f"bad gateway: {exc}", status_code=502)

        async def body() -> Any:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        return StreamingResponse(
            body(),
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type"),
        )
