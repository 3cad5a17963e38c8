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
    "ROUTES",
    "VERBS",
    "Capability",
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
    "definitions",
    "origin",
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dump_document(doc: dict[str, Any]) -> bytes:
    """Canonical bytes of a document: known keys in :data:`KEY_ORDER`, 2-space JSON, final newline."""
    ordered = {key: doc[key] for key in KEY_ORDER if key in doc}
    extra = sorted(set(doc) - set(KEY_ORDER))
    if extra:
        raise CodegenError(str(doc.get("name", "?")), f"unknown top-level keys {extra}")
    return (json.dumps(ordered, indent=2, ensure_ascii=False) + "\n").encode()


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


def _obj(doc: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CodegenError(f"{where}#/{key}", "must be a JSON object (a schema)")
    return value


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
    verbs = doc.get("verbs")
    if not isinstance(verbs, list) or not verbs or any(v not in VERBS for v in verbs):
        raise CodegenError(f"{where}#/verbs", f"must be a non-empty list from {list(VERBS)}")
    if len(set(verbs)) != len(verbs):
        raise CodegenError(f"{where}#/verbs", "has duplicates")
    inp = _obj(doc, "input", where)
    if ("run" in verbs or "stream" in verbs) and inp is None:
        raise CodegenError(f"{where}#/input", "required for the run and stream verbs")
    if "stream" in verbs and _obj(doc, "events", where) is None:
        raise CodegenError(f"{where}#/events", "required for the stream verb")
    definitions = _obj(doc, "definitions", where) or {}
    extra = sorted(set(doc) - set(KEY_ORDER))
    if extra:
        raise CodegenError(where, f"unknown top-level keys {extra}")
    for opt in ("model_parameter", "stream_switch"):
        value = doc.get(opt)
        if value is not None and not isinstance(value, str):
            raise CodegenError(f"{where}#/{opt}", "must be a string")
    return Capability(
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
