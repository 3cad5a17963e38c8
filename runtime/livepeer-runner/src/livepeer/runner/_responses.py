"""Request and response helpers shared by the batch app (``_app``) and the live app (``_live``).

Error bodies keep the FastAPI shapes the AI runner answers with, so an orchestrator or client that parses
ai-runner errors parses these too: ``{"detail": {"msg": ...}}`` for errors, ``{"detail": [...]}`` (pydantic's
error list) for 422. Their own module so ``_live`` does not import ``_app`` (which imports ``_live``).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "error_response",
    "pydantic_errors",
    "read_body",
    "read_json_object",
    "validation_response",
]

_DRAIN = 16 * 1024 * 1024


def error_response(
    status_code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse({"detail": {"msg": message}}, status_code=status_code, headers=headers)


def validation_response(errors: list[dict[str, Any]]) -> Response:
    return JSONResponse({"detail": errors}, status_code=422)


def pydantic_errors(
    exc: PydanticValidationError, prefix: tuple[str | int, ...]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        out.append({"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]})
    return out


async def read_body(request: Request, limit: int) -> bytes | Response:
    """The whole body, or 413 once it is known to exceed ``limit`` bytes (before reading it all)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return error_response(413, f"request body larger than {limit} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + _DRAIN:
            break
        if size <= limit:
            parts.append(chunk)
    if size > limit:
        # Up to _DRAIN extra bytes are read and dropped so the client, still sending, gets the 413
        # instead of a reset connection.
        return error_response(413, f"request body larger than {limit} bytes")
    return b"".join(parts)


async def read_json_object(request: Request, limit: int = 1 << 20) -> dict[str, Any] | Response:
    """The body as a JSON object, or the 413/422 response explaining why it is not one."""
    raw = await read_body(request, limit)
    if isinstance(raw, Response):
        return raw
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return validation_response(
            [{"loc": ["body"], "msg": f"Invalid JSON: {exc}", "type": "json_invalid"}]
        )
    if not isinstance(data, dict):
        return validation_response(
            [{"loc": ["body"], "msg": "Input should be a JSON object", "type": "model_type"}]
        )
    return data
