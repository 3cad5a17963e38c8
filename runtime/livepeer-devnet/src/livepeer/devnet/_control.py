"""The devnet's control API (plain HTTP on loopback): read the topology, flip fault switches, restart.

``POST {control}/orchestrators/0/faults {"worker_dead": true}``; ``POST {control}/orchestrators/0/restart``;
``POST {control}/signer/faults {"storm_status": 480, "storm_count": 3}``; ``GET {control}/faults``;
``POST {control}/fund {"address": "0x…"}`` gives a key a ticket reserve (priced BYOC work needs one).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from livepeer.devnet._network import Devnet, OrchestratorHandle

__all__ = ["control_app"]


def control_app(net: Devnet) -> Starlette:
    def faults() -> dict[str, Any]:
        return {
            "orchestrators": [h.faults.as_dict() for h in net.orchestrators],
            "signer": net.signer_faults.as_dict(),
        }

    def handle(request: Request) -> OrchestratorHandle | Response:
        try:
            return net.orchestrators[int(request.path_params["index"])]
        except (ValueError, IndexError):
            return JSONResponse({"error": "no such orchestrator"}, status_code=404)

    async def body(request: Request) -> dict[str, Any] | Response:
        try:
            value = json.loads(await request.body() or b"{}")
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        if not isinstance(value, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        return value

    async def info(request: Request) -> Response:
        return JSONResponse(net.info())

    async def get_faults(request: Request) -> Response:
        return JSONResponse(faults())

    async def orch_faults(request: Request) -> Response:
        target, values = handle(request), await body(request)
        if isinstance(target, Response):
            return target
        if isinstance(values, Response):
            return values
        try:
            target.faults.update(values)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(faults())

    async def restart(request: Request) -> Response:
        target = handle(request)
        if isinstance(target, Response):
            return target
        await target.restart()
        return JSONResponse({"url": target.url})

    async def signer_faults(request: Request) -> Response:
        values = await body(request)
        if isinstance(values, Response):
            return values
        try:
            net.signer_faults.update(values)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(faults())

    async def fund(request: Request) -> Response:
        values = await body(request)
        if isinstance(values, Response):
            return values
        address = values.get("address")
        if not (isinstance(address, str) and address.startswith("0x") and len(address) == 42):
            return JSONResponse({"error": "address must be a 0x-prefixed 20-byte hex string"}, 400)
        net.fund(address)
        return JSONResponse({"funded": address})

    return Starlette(
        routes=[
            Route("/fund", fund, methods=["POST"]),
            Route("/", info, methods=["GET"]),
            Route("/faults", get_faults, methods=["GET"]),
            Route("/orchestrators/{index}/faults", orch_faults, methods=["POST"]),
            Route("/orchestrators/{index}/restart", restart, methods=["POST"]),
            Route("/signer/faults", signer_faults, methods=["POST"]),
        ]
    )
