"""Deploy side of the SDK: serve a Python class as a Livepeer BYOC capability container.

``app = serve(TextReversal)`` builds an ASGI app; ``livepeer-runner serve mod:TextReversal`` runs one.
Routes: ``POST /`` (and any sub-path) runs ``predict`` for a :class:`Pipeline`; ``/stream/start``,
``/stream/params``, ``/stream/stop`` drive a :class:`LivePipeline`; ``GET /health``, ``GET /openapi.json``
(format described in ``livepeer.runner._openapi``) and ``GET /`` describe the runner.

Importing this package is cheap: starlette, pydantic and httpx load on first use of ``serve``,
``openapi_*`` or ``register*``; PyAV and numpy only when a live stream starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from livepeer.runner._errors import (
    PipelineDefinitionError,
    PipelineError,
    RegistrationError,
    RunnerError,
)
from livepeer.runner._pipeline import LivePipeline, Pipeline

if TYPE_CHECKING:
    from livepeer.runner._app import serve
    from livepeer.runner._openapi import openapi_json, openapi_schema
    from livepeer.runner._register import register, register_async, unregister, unregister_async

__version__ = "0.1.0"

__all__ = [
    "LivePipeline",
    "Pipeline",
    "PipelineDefinitionError",
    "PipelineError",
    "RegistrationError",
    "RunnerError",
    "__version__",
    "openapi_json",
    "openapi_schema",
    "register",
    "register_async",
    "serve",
    "unregister",
    "unregister_async",
]

_LAZY = {
    "serve": "livepeer.runner._app",
    "openapi_json": "livepeer.runner._openapi",
    "openapi_schema": "livepeer.runner._openapi",
    "register": "livepeer.runner._register",
    "register_async": "livepeer.runner._register",
    "unregister": "livepeer.runner._register",
    "unregister_async": "livepeer.runner._register",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'livepeer.runner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
