"""``GET /openapi.json``: the OpenAPI 3.1 document a runner publishes (codegen imports it).

Format (stable key order; :func:`openapi_json` gives the exact bytes the server sends)::

    {
      "openapi": "3.1.0",
      "info": {"title": <capability>, "version": <version>, "description": <text>},
      "x-livepeer-capability": "text-reversal",        # capability name (BYOC name / pipeline id)
      "x-livepeer-verbs": ["run"],                     # subset of run | stream | live
      "x-livepeer-media-types": {"input": [...], "output": [...]},   # live adds events/control/data
      "paths": {
        "/": {"get": <runner info>, "post": <the capability operation>},        # batch pipelines
        "/stream/start" | "/stream/params" | "/stream/stop": {"post": ...},    # live pipelines
        "/stream/status": {"get": ...},
        "/health": {"get": ...}, "/openapi.json": {"get": ...}
      },
      "components": {"schemas": {...}}
    }

The capability operation (``POST /`` for a :class:`Pipeline`, ``POST /stream/start`` for a
:class:`LivePipeline`) repeats the three ``x-livepeer-*`` keys and has ``operationId`` ``"predict"`` /
``"startStream"``. Its ``requestBody`` holds ``application/json`` with a ``$ref`` to the input model derived from
``predict``'s signature (named ``<Class>Input`` unless ``input_model_name`` says otherwise). Its ``200`` response
lists ``application/json`` with the schema of the returned value when ``predict`` returns values, and
``text/event-stream`` when it streams: for that media type ``schema`` is the schema of ONE event's ``data``
(each item is sent as ``data: <compact JSON>``), and ``x-livepeer-sse`` is ``{"encoding": "json",
"terminator": "[DONE]"}``. A ``bytes`` return is ``{"type": "string", "format": "binary"}`` under the pipeline's
``output_media_type``. Errors are ``422`` (``HTTPValidationError``: ``{"detail": [{"loc", "msg", "type"}]}``,
``loc`` starting with ``"body"``) and ``HTTPError`` (``{"detail": {"msg": ...}}``) for 401/409/500/503.
A live pipeline's start body is ``LiveStreamStart`` (trickle URLs + ``params``); ``params`` refers to the
pipeline's ``params_model`` when it has one, else it is a free-form object.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from livepeer.runner._pipeline import LivePipeline, Pipeline
from livepeer.runner._spec import PredictSpec, predict_spec

__all__ = ["openapi_json", "openapi_schema"]

_REF = "#/components/schemas/{model}"
_SSE = {"encoding": "json", "terminator": "[DONE]"}


class ValidationError(BaseModel):
    loc: list[str | int] = Field(title="Location")
    msg: str = Field(title="Message")
    type: str = Field(title="Error Type")


class HTTPValidationError(BaseModel):
    detail: list[ValidationError] = Field(title="Detail")


class APIError(BaseModel):
    msg: str = Field(title="Message")


class HTTPError(BaseModel):
    detail: APIError


class Health(BaseModel):
    status: str = Field(description="loading, ready or error")
    error: str | None = None


class RunnerInfo(BaseModel):
    capability: str
    version: str
    description: str
    verbs: list[str]
    schema_url: str


class LiveStreamStart(BaseModel):
    """Body the orchestrator sends to ``/stream/start``."""

    model_config = ConfigDict(extra="allow")

    subscribe_url: str = Field(
        default="", description="Trickle channel the runner reads input media from."
    )
    publish_url: str = Field(
        default="", description="Trickle channel the runner writes output media to."
    )
    control_url: str = Field(default="", description="Trickle channel carrying parameter updates.")
    events_url: str = Field(
        default="", description="Trickle channel the runner writes status events to."
    )
    data_url: str = Field(
        default="", description="Trickle channel the runner writes JSONL data to."
    )
    gateway_request_id: str = ""
    stream_id: str = ""
    params: dict[str, Any] | None = None


class StreamStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str = Field(description="started, running, updated, stopped or idle")
    stream_id: str | None = None


def _error_responses(*codes: int) -> dict[str, object]:
    texts = {
        401: "Missing or wrong bearer token.",
        409: "A stream is already running.",
        413: "The request body is too large.",
        500: "The pipeline failed.",
        503: "The pipeline is loading or failed to load.",
    }
    out: dict[str, object] = {}
    for code in codes:
        if code == 422:
            out["422"] = {
                "description": "The input does not match the schema.",
                "content": {
                    "application/json": {
                        "schema": {"$ref": _REF.format(model="HTTPValidationError")}
                    }
                },
            }
        else:
            out[str(code)] = {
                "description": texts[code],
                "content": {
                    "application/json": {"schema": {"$ref": _REF.format(model="HTTPError")}}
                },
            }
    return out


def _json_get(model: str, description: str, op_id: str) -> dict[str, object]:
    return {
        "get": {
            "operationId": op_id,
            "responses": {
                "200": {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}},
                }
            },
        }
    }


def openapi_schema(
    pipeline: type[Pipeline] | type[LivePipeline] | Pipeline | LivePipeline,
    *,
    name: str | None = None,
) -> dict[str, object]:
    """The runner's OpenAPI document: ``openapi_schema(MyPipeline)["x-livepeer-verbs"]``."""
    cls = pipeline if isinstance(pipeline, type) else type(pipeline)
    capability = name or cls.capability_name()
    description = cls.capability_description()
    adapters: list[tuple[str, JsonSchemaMode, TypeAdapter[Any]]] = []

    def add(key: str, tp: Any, mode: JsonSchemaMode) -> None:
        adapters.append((key, mode, TypeAdapter(tp)))

    for model in (HTTPValidationError, HTTPError, Health, RunnerInfo):
        add(model.__name__, model, "validation")

    spec: PredictSpec | None = None
    if issubclass(cls, Pipeline):
        spec = predict_spec(cls)
        add("input", spec.input_model, "validation")
        if spec.returns_value and not spec.returns_bytes:
            add("output", spec.output_type, "serialization")
        if spec.streams:
            add("item", spec.item_type, "serialization")
    else:
        params_model = cls.params_model
        add("LiveStreamStart", LiveStreamStart, "validation")
        add(StreamStatus.__name__, StreamStatus, "validation")
        if params_model is not None:
            add("params", params_model, "validation")

    by_key, defs = TypeAdapter.json_schemas(
        [(key, mode, adapter) for key, mode, adapter in adapters], ref_template=_REF
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))

    def schema_of(key: str, mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(by_key[(key, mode)])

    verbs: list[str]
    media: dict[str, list[str]]
    paths: dict[str, object] = {}
    if spec is not None:
        verbs = (["run"] if spec.returns_value else []) + (["stream"] if spec.streams else [])
        output_media: list[str] = []
        content: dict[str, object] = {}
        if spec.returns_value:
            if spec.returns_bytes:
                media_type = cls.output_media_type  # type: ignore[union-attr]
                content[media_type] = {"schema": {"type": "string", "format": "binary"}}
                output_media.append(media_type)
            else:
                content["application/json"] = {"schema": schema_of("output", "serialization")}
                output_media.append("application/json")
        if spec.streams:
            content["text/event-stream"] = {
                "schema": schema_of("item", "serialization"),
                "x-livepeer-sse": dict(_SSE),
            }
            output_media.append("text/event-stream")
        media = {"input": ["application/json"], "output": output_media}
        operation: dict[str, object] = {
            "operationId": "predict",
            "summary": capability,
            "description": description,
            "x-livepeer-capability": capability,
            "x-livepeer-verbs": verbs,
            "x-livepeer-media-types": media,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": schema_of("input", "validation")}},
            },
            "responses": {
                "200": {"description": "The pipeline's output.", "content": content},
                **_error_responses(401, 413, 422, 500, 503),
            },
        }
        root = _json_get("RunnerInfo", "What this runner serves.", "info")
        root["post"] = operation
        paths["/"] = root
    else:
        verbs = ["live"]
        media = {
            "input": ["video/mp2t"],
            "output": ["video/mp2t"],
            "events": ["application/json"],
            "control": ["application/json"],
            "data": ["application/jsonl"],
        }
        params_schema: dict[str, Any] = (
            schema_of("params", "validation")
            if params_model is not None
            else {"type": "object", "additionalProperties": True}
        )
        start = dict(schemas["LiveStreamStart"])
        start_props = dict(start["properties"])
        start_props["params"] = {**params_schema, "description": "Initial stream parameters."}
        start["properties"] = start_props
        schemas["LiveStreamStart"] = start
        status_ref = {"$ref": _REF.format(model="StreamStatus")}

        def post(
            op_id: str, body: dict[str, Any] | None, codes: tuple[int, ...]
        ) -> dict[str, object]:
            op: dict[str, object] = {"operationId": op_id}
            if body is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                }
            op["responses"] = {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": status_ref}},
                },
                **_error_responses(*codes),
            }
            return {"post": op}

        start_op = post(
            "startStream", {"$ref": _REF.format(model="LiveStreamStart")}, (401, 409, 422, 500, 503)
        )
        start_post = start_op["post"]
        assert isinstance(start_post, dict)
        start_op["post"] = {
            "operationId": "startStream",
            "summary": capability,
            "description": description,
            "x-livepeer-capability": capability,
            "x-livepeer-verbs": verbs,
            "x-livepeer-media-types": media,
            **{k: v for k, v in start_post.items() if k != "operationId"},
        }
        paths["/"] = _json_get("RunnerInfo", "What this runner serves.", "info")
        paths["/stream/start"] = start_op
        paths["/stream/params"] = post("updateStreamParams", params_schema, (401, 409, 422, 500))
        paths["/stream/stop"] = post("stopStream", None, (401, 500))
        paths["/stream/status"] = _json_get(
            "StreamStatus", "The running stream, if any.", "streamStatus"
        )

    paths["/health"] = {
        "get": {
            "operationId": "health",
            "responses": {
                "200": {
                    "description": "Ready.",
                    "content": {
                        "application/json": {"schema": {"$ref": _REF.format(model="Health")}}
                    },
                },
                "503": {
                    "description": "Loading, or setup failed.",
                    "content": {
                        "application/json": {"schema": {"$ref": _REF.format(model="Health")}}
                    },
                },
            },
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "responses": {
                "200": {"description": "This document.", "content": {"application/json": {}}}
            },
        }
    }
    info: dict[str, object] = {"title": capability, "version": cls.version}
    if description:
        info["description"] = description
    return {
        "openapi": "3.1.0",
        "info": info,
        "x-livepeer-capability": capability,
        "x-livepeer-verbs": verbs,
        "x-livepeer-media-types": media,
        "paths": paths,
        "components": {"schemas": {key: schemas[key] for key in sorted(schemas)}},
    }


def openapi_json(
    pipeline: type[Pipeline] | type[LivePipeline] | Pipeline | LivePipeline,
    *,
    name: str | None = None,
) -> bytes:
    """The document as canonical bytes (2-space indent, UTF-8, trailing newline)."""
    text = json.dumps(openapi_schema(pipeline, name=name), indent=2, ensure_ascii=False)
    return (text + "\n").encode()
