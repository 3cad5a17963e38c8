"""The capability schema document: ``schemas/<capability>.json`` (format ``livepeer-capability/1``).

One JSON object per capability, keys in this order (see docs/codegen.md)::

    {
      "format": "livepeer-capability/1",
      "name": "text-to-image",                 # capability name the runtime routes on
      "description": "...",                    # our words; becomes the wrapper docstring
      "route": "ai-pipeline",                  # ai-pipeline | byoc | byoc-live | lv2v | app
      "verbs": ["run"],                        # subset of run, stream, live (in that order)
      "media_types": {"input": [...], "output": [...]},
      "model_parameter": "model_id",           # optional: input field that names the model
      "stream_switch": "stream",               # optional: boolean input field that selects SSE
      "input": {...},                          # JSON Schema object (run / stream)
      "output": {...},                         # JSON Schema of the result (run)
      "events": {...},                         # JSON Schema of one event's data (stream)
      "params": {...},                         # JSON Schema of the live params (live)
      "path": "items/{item_id}",               # optional: route under /process/request/ (BYOC)
      "path_parameters": {...},                # optional: JSON Schema object of the route's {parameters}
      "operations": [{"name": ..., ...}],      # optional: further BYOC routes, one wrapper method each
      "definitions": {"Media": {...}},         # shared schemas, referenced as #/definitions/<Name>
      "origin": {"source": ..., "sha256": ..., "pointer": ..., "title": ..., "version": ...}
    }

A property may carry ``"x-livepeer-file": true``: in outputs it is a media URL the runtime turns into a
``FileOutput``; ``"format": "binary"`` marks a file in inputs (``Path | bytes | IO[bytes]``) and outputs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livepeer.codegen._errors import CodegenError

__all__ = [
    "FORMAT",
    "KEY_ORDER",
    "OPERATION_KEYS",
    "ROUTES",
    "VERBS",
    "Capability",
    "Operation",
    "dump_document",
    "load_capability",
    "sha256_hex",
]

FORMAT = "livepeer-capability/1"
ROUTES = ("ai-pipeline", "byoc", "byoc-live", "lv2v", "app")
VERBS = ("run", "stream", "live")
KEY_ORDER = (
    "format",
    "name",
    "description",
    "route",
    "verbs",
    "media_types",
    "model_parameter",
    "stream_switch",
    "input",
    "output",
    "events",
    "params",
    "path",
    "path_parameters",
    "operations",
    "definitions",
    "origin",
)

# Keys of one entry of `operations`, in this order.
OPERATION_KEYS = (
    "name",
    "description",
    "path",
    "verbs",
    "media_types",
    "stream_switch",
    "path_parameters",
    "input",
    "output",
    "events",
    "pointer",
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dump_document(doc: dict[str, Any]) -> bytes:
    """Canonical bytes of a document: known keys in :data:`KEY_ORDER`, 2-space JSON, final newline."""
    ordered = {key: doc[key] for key in KEY_ORDER if key in doc}
    if "operations" in ordered:
        ordered["operations"] = [
            {key: op[key] for key in OPERATION_KEYS if key in op} for op in ordered["operations"]
        ]
    extra = sorted(set(doc) - set(KEY_ORDER))
    if extra:
        raise CodegenError(str(doc.get("name", "?")), f"unknown top-level keys {extra}")
    return (json.dumps(ordered, indent=2, ensure_ascii=False) + "\n").encode()


@dataclass(frozen=True)
class Operation:
    """One wrapper method group: the capability's own verbs (``name == ""``: ``run``/``stream``/``live``) or a
    further BYOC route (``name``: ``<name>``/``<name>_async``/``<name>_stream``/``<name>_stream_async``)."""

    name: str
    description: str
    path: str  # route under /process/request/ with {parameters}; "" = the capability URL itself
    verbs: tuple[str, ...]
    media_types: dict[str, list[str]]
    stream_switch: str | None
    path_parameters: dict[str, Any] | None
    input: dict[str, Any] | None
    output: dict[str, Any] | None
    events: dict[str, Any] | None
    pointer: str


@dataclass(frozen=True)
class Capability:
    """A loaded capability document plus where it came from."""

    name: str
    description: str
    route: str
    verbs: tuple[str, ...]
    input: dict[str, Any] | None
    output: dict[str, Any] | None
    events: dict[str, Any] | None
    params: dict[str, Any] | None
    definitions: dict[str, Any]
    model_parameter: str | None
    stream_switch: str | None
    media_types: dict[str, list[str]]
    origin: dict[str, Any]
    file: str
    sha256: str
    raw: dict[str, Any] = field(repr=False, compare=False)
    path: str = ""
    path_parameters: dict[str, Any] | None = None
    operations: tuple[Operation, ...] = ()

    def default_operation(self) -> Operation | None:
        """The capability's own verbs as an :class:`Operation` (``None`` for a routes-only capability)."""
        if not self.verbs:
            return None
        return Operation(
            name="",
            description=self.description,
            path=self.path,
            verbs=self.verbs,
            media_types=self.media_types,
            stream_switch=self.stream_switch,
            path_parameters=self.path_parameters,
            input=self.input,
            output=self.output,
            events=self.events,
            pointer=str(self.origin.get("pointer", "")),
        )


def _obj(doc: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CodegenError(f"{where}#/{key}", "must be a JSON object (a schema)")
    return value


def _verbs(doc: dict[str, Any], where: str, *, allow_empty: bool = False) -> list[str]:
    where = where if "#" in where else where + "#"
    verbs = doc.get("verbs")
    if not isinstance(verbs, list) or any(v not in VERBS for v in verbs):
        raise CodegenError(f"{where}/verbs", f"must be a list from {list(VERBS)}")
    if not verbs and not allow_empty:
        raise CodegenError(f"{where}/verbs", f"must be a non-empty list from {list(VERBS)}")
    if len(set(verbs)) != len(verbs):
        raise CodegenError(f"{where}/verbs", "has duplicates")
    if ("run" in verbs or "stream" in verbs) and not isinstance(doc.get("input"), dict):
        raise CodegenError(f"{where}/input", "required for the run and stream verbs")
    if "stream" in verbs and not isinstance(doc.get("events"), dict):
        raise CodegenError(f"{where}/events", "required for the stream verb")
    return verbs


def _operation(op: Any, where: str) -> Operation:
    if not isinstance(op, dict):
        raise CodegenError(where, "must be an object")
    name = op.get("name")
    if not isinstance(name, str) or not name:
        raise CodegenError(f"{where}/name", "must be a non-empty string")
    verbs = _verbs(op, where)
    if "live" in verbs:
        raise CodegenError(f"{where}/verbs", "routes support run and stream, not live")
    path = op.get("path") or ""
    if not isinstance(path, str):
        raise CodegenError(f"{where}/path", "must be a string")

    def obj(key: str) -> dict[str, Any] | None:
        value = op.get(key)
        if value is not None and not isinstance(value, dict):
            raise CodegenError(f"{where}/{key}", "must be a JSON object (a schema)")
        return value

    return Operation(
        name=name,
        description=str(op.get("description") or ""),
        path=path,
        verbs=tuple(v for v in VERBS if v in verbs),
        media_types=dict(op.get("media_types") or {}),
        stream_switch=op.get("stream_switch") if isinstance(op.get("stream_switch"), str) else None,
        path_parameters=obj("path_parameters"),
        input=obj("input"),
        output=obj("output"),
        events=obj("events"),
        pointer=str(op.get("pointer") or ""),
    )


def load_capability(path: Path, *, display: str | None = None) -> Capability:
    """Read and check one ``schemas/<capability>.json``: ``load_capability(Path("schemas/llm.json"))``."""
    where = display or str(path)
    data = path.read_bytes()
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        raise CodegenError(where, f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CodegenError(f"{where}#/format", f"expected {FORMAT!r}")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise CodegenError(f"{where}#/name", "must be a non-empty string")
    route = doc.get("route")
    if route not in ROUTES:
        raise CodegenError(f"{where}#/route", f"must be one of {list(ROUTES)}, got {route!r}")
    raw_ops = doc.get("operations") or []
    if not isinstance(raw_ops, list):
        raise CodegenError(f"{where}#/operations", "must be a list")
    verbs = _verbs(doc, where, allow_empty=bool(raw_ops))
    inp = _obj(doc, "input", where)
    definitions = _obj(doc, "definitions", where) or {}
    extra = sorted(set(doc) - set(KEY_ORDER))
    if extra:
        raise CodegenError(where, f"unknown top-level keys {extra}")
    for opt in ("model_parameter", "stream_switch"):
        value = doc.get(opt)
        if value is not None and not isinstance(value, str):
            raise CodegenError(f"{where}#/{opt}", "must be a string")
    operations = tuple(_operation(op, f"{where}#/operations/{i}") for i, op in enumerate(raw_ops))
    route_path = doc.get("path") or ""
    if not isinstance(route_path, str):
        raise CodegenError(f"{where}#/path", "must be a string")
    return Capability(
        path=route_path,
        path_parameters=_obj(doc, "path_parameters", where),
        operations=operations,
        name=name,
        description=str(doc.get("description") or ""),
        route=route,
        verbs=tuple(v for v in VERBS if v in verbs),
        input=inp,
        output=_obj(doc, "output", where),
        events=_obj(doc, "events", where),
        params=_obj(doc, "params", where),
        definitions=definitions,
        model_parameter=doc.get("model_parameter"),
        stream_switch=doc.get("stream_switch"),
        media_types=dict(doc.get("media_types") or {}),
        origin=dict(doc.get("origin") or {}),
        file=where,
        sha256=sha256_hex(data),
        raw=doc,
    )
