"""Deploy side of the SDK: serve a Python class as a Livepeer BYOC capability container.

``app = serve(TextReversal)`` builds an ASGI app; ``livepeer-runner serve mod:TextReversal`` runs one.
Routes: ``POST /`` (and any sub-path) runs ``predict`` for a :class:`Pipeline`; ``/stream/start``,
``/stream/params``, ``/stream/stop`` drive a :class:`LivePipeline`; ``GET /health``, ``GET /openapi.json``
(format described in ``livepeer.runner._openapi``) and ``GET /`` describe the runner.
PyAV and numpy load only when a live stream starts.
"""

from livepeer.runner._app import serve
from livepeer.runner._errors import (
    PipelineDefinitionError,
    PipelineError,
    RegistrationError,
    RunnerError,
)
from livepeer.runner._openapi import openapi_json, openapi_schema
from livepeer.runner._pipeline import LivePipeline, Pipeline
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
