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

from livepeer.devnet._gohttp import ANY_METHOD, Reject, go_error

if TYPE_CHECKING:
    from livepeer.devnet._orchestrator import Orchestrator

__all__ = ["AppRoutes", "LiveRunner"]


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
        # (sender, manifest id) -> price of a paid session (go-livepeer's per-session fixed price).
        self.fixed_prices: dict[tuple[str, str], int] = {}

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
        self.fixed_prices.clear()

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

    def _challenge(
        self,
        runner: LiveRunner,
        payer: bytes,
        manifest: str | None = None,
        payment_url: str | None = None,
    ) -> dict[str, Any]:
        """go-livepeer's challenge (server/ai_http.go:443-454, 494-520 at 176aa415): an OrchestratorInfo with
        the runner price (pixelsPerUnit 1), fresh ticket params and an auth token whose session id is the
        ``manifest_id``; ``payment_url`` is the session's payment route (``/refresh-payment``: ``/payment``)."""
        from livepeer.devnet._wire import pb

        o = self.orch
        price = (self._price(runner), 1)
        manifest = manifest or os.urandom(8).hex()
        info = pb.OrchestratorInfo(
            transcoder=o.service_url,
            price_info=pb.PriceInfo(pricePerUnit=price[0], pixelsPerUnit=price[1]),
            ticket_params=o.tickets.ticket_params(
                price, payer
            ),  # bound to the payer (recipient rand hash)
            address=o.key.address_bytes,
            auth_token=o.tickets.auth_token(session_id=manifest),
        )
        self.challenges[manifest] = runner.name
        return {
            "payment_params": base64.b64encode(info.SerializeToString()).decode(),
            "orchestrator": o.service_url,
            "manifest_id": manifest,
            "payment_url": payment_url
            or f"{o.service_url}/apps/{runner.name}/session/{manifest}/payment",
        }

    def _capacity_left(self, runner: LiveRunner) -> bool:
        used = sum(1 for s in self.sessions.values() if s.runner == runner.name)
        return used < runner.capacity and not self.orch.faults.no_capacity

    async def _admit(self, request: Request, mode: str) -> tuple[LiveRunner, str, str] | Response:
        """``ReserveLiveRunnerSession`` / ``ProxyLiveRunnerSingleShot`` up to the reservation
        (server/ai_http.go:216-382, 755-796): runner, mode, then (priced) challenge or header ladder, then
        capacity, then the payment. Returns (runner, session id, sender) or the refusal."""
        o = self.orch
        runner = self.runners.get(request.path_params["runner"])
        if runner is None:
            return go_error("runner not found", 404)
        if runner.mode != mode:
            text = (
                "only persistent runners have sessions"
                if mode == "persistent"
                else ("runner is not single-shot")
            )
            return go_error(text, 400)
        if not o.options.onchain:  # no price info: reserve directly
            if not self._capacity_left(runner):
                return go_error("no capacity", 503)
            return runner, os.urandom(8).hex(), ""
        headers = request.headers
        if "livepeer-payment" not in headers and "livepeer-segment" not in headers:
            # ai_http.go:277-280, 395-415, 486-492: the challenge needs Livepeer-Payer-Address.
            payer = headers.get("livepeer-payer-address", "")
            if not _is_hex_address(payer):
                return JSONResponse(
                    {"error": {"message": "invalid live runner payment signer address"}},
                    status_code=402,
                )
            challenge = self._challenge(runner, bytes.fromhex(payer[-40:]))
            return JSONResponse(challenge, status_code=402)
        try:
            payment, seg, sender = o.live._lv2v_credentials(request)
            manifest = seg.manifestId.decode(errors="replace")
            if manifest != seg.auth_token.session_id:  # ai_http.go:285-288
                raise Reject(403, "mismatched manifest and auth token")
            expected = payment.expected_price
            if runner.unit == "fixed" and (
                expected.pricePerUnit != self._price(runner) or expected.pixelsPerUnit != 1
            ):  # ai_http.go:290-295
                raise Reject(400, "payment price does not match live runner price")
            if not self._capacity_left(runner):
                raise Reject(503, "no capacity")
            o.live._lv2v_process_payment(payment, sender, manifest)  # ai_http.go:314-320
        except Reject as exc:
            return exc.response()
        self.challenges.pop(manifest, None)
        self.fixed_prices[(sender, manifest)] = self._price(runner)
        return runner, manifest, sender

    async def create_session(self, request: Request) -> Response:
        admitted = await self._admit(request, "persistent")
        if isinstance(admitted, Response):
            return admitted
        runner, sid, sender = admitted
        self.sessions[sid] = AppSession(id=sid, runner=runner.name, sender=sender)
        base = f"{self.orch.service_url}/apps/{runner.name}/session/{sid}"
        # ai_http.go:255: control_url is the session URL itself ({…}/stop and {…}/payment hang off it).
        return JSONResponse({"session_id": sid, "app_url": f"{base}/app", "control_url": base})

    async def single_shot(self, request: Request) -> Response:
        """One proxied call; the admission is used up by it and nothing is kept."""
        admitted = await self._admit(request, "single-shot")
        if isinstance(admitted, Response):
            return admitted
        runner, _sid, _sender = admitted
        return await self._forward(request, runner, await request.body())

    def _session(self, request: Request) -> AppSession | Response:
        session = self.sessions.get(request.path_params["sid"])
        if session is None or session.runner != request.path_params["runner"]:
            return PlainTextResponse("session not found", status_code=404)
        return session

    async def session_payment(self, request: Request) -> Response:
        from livepeer.devnet._wire import pb

        session = self._session(request)
        if isinstance(session, Response):
            return session
        if self.runners[session.runner].unit == "fixed":  # ai_http.go:551-554
            return go_error(
                "fixed-price live runner sessions do not accept follow-up payments", 409
            )
        o = self.orch
        try:  # ai_http.go:556-581: 402/403 ladder, manifest == session (403), ProcessPayment (400)
            payment, seg, sender = o.live._lv2v_credentials(request)
            if seg.manifestId.decode(errors="replace") != session.id:
                raise Reject(403, "mismatched session and payment manifest")
            o.live._lv2v_process_payment(payment, sender, session.id)
        except Reject as exc:
            return exc.response()
        info = o.orchestrator_info(sender=bytes(payment.sender[-20:]) or None)
        info.auth_token.CopyFrom(seg.auth_token)  # ai_http.go:575: the session keeps its auth token
        result = pb.PaymentResult(info=info)
        return Response(result.SerializeToString(), media_type="application/octet-stream")

    async def stop_session(self, request: Request) -> Response:
        session = self._session(request)
        if isinstance(session, Response):
            return session
        self.sessions.pop(session.id, None)
        return Response(status_code=204)

    async def refresh_payment(self, request: Request) -> Response:
        """``RefreshPayment`` (server/rpc.go:454-508): a new challenge at the session's fixed price, keyed by
        (sender, manifest id); JSON error envelope; ``payment_url`` is ``{svc}/payment``."""
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise ValueError("json: cannot unmarshal into refreshPaymentParamsRequest")
        except ValueError as exc:
            return JSONResponse({"error": {"message": str(exc)}}, status_code=400)
        sender = body.get("sender")
        if not isinstance(sender, str) or not _is_hex_address(sender):
            return JSONResponse({"error": {"message": "invalid sender"}}, status_code=400)
        manifest = str(body.get("manifest_id") or "").strip()
        if not manifest:
            return JSONResponse({"error": {"message": "missing manifest_id"}}, status_code=400)
        key = ("0x" + sender.lower().removeprefix("0x"), manifest)
        session = self.sessions.get(manifest)
        runner = self.runners.get(session.runner) if session is not None else None
        if key not in self.fixed_prices or runner is None:
            return JSONResponse(
                {"error": {"message": "fixed price not found for session"}}, status_code=409
            )
        challenge = self._challenge(
            runner, bytes.fromhex(key[0][2:]), manifest, f"{self.orch.service_url}/payment"
        )
        self.challenges.pop(manifest, None)
        return JSONResponse(challenge)

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


def _is_hex_address(value: str) -> bool:
    # go-ethereum IsHexAddress: optional 0x, exactly 40 hex digits.
    text = value[2:] if value[:2] in ("0x", "0X") else value
    return len(text) == 40 and all(c in "0123456789abcdefABCDEF" for c in text)
