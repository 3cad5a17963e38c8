"""Import capability schemas from OpenAPI 3.0/3.1 documents, runner ``/openapi.json`` or JSON Schema.

``import_source("schemas/upstream/ai-runner-gateway.facts.json")`` returns one capability document per
POST pipeline. Facts (names, types, constraints, defaults, enums) are kept; upstream ``description`` and
``title`` texts are dropped unless the source is one of our own runners (it carries ``x-livepeer-*``), so
every description in ``schemas/`` is written by this project (see :func:`keep_descriptions`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livepeer.codegen._document import FORMAT, VERBS, sha256_hex
from livepeer.codegen._errors import CodegenError
from livepeer.codegen._naming import pointer

__all__ = ["Source", "import_document", "keep_descriptions", "load_source"]

# JSON Schema / OpenAPI keywords the renderer cannot express faithfully: fail loudly, naming the path.
_UNSUPPORTED = (
    "not",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependentRequired",
    "dependencies",
    "$dynamicRef",
    "$recursiveRef",
    "patternProperties",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
)
# Annotations dropped on import: free text from upstream, or tool-specific.
_DROP = (
    "description",
    "title",
    "example",
    "examples",
    "externalDocs",
    "xml",
    "$comment",
    "$schema",
    "$id",
)
_KEEP = (
    "type", "format", "enum", "const", "default", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "minItems", "maxItems",
    "uniqueItems", "minProperties", "maxProperties", "required", "properties", "items", "prefixItems",
    "additionalProperties", "allOf", "anyOf", "oneOf", "$ref", "discriminator", "nullable", "deprecated",
    "readOnly", "writeOnly", "contentMediaType", "contentEncoding",
)  # fmt: skip
_SSE = "text/event-stream"
_LIVE_URLS = ("subscribe_url", "publish_url")


@dataclass(frozen=True)
class Source:
    """A loaded source document: ``ref`` is what SOURCES.md records (path, URL or ``runner:mod:Class``)."""

    ref: str
    document: dict[str, Any]
    sha256: str


def _parse(data: bytes, ref: str) -> dict[str, Any]:
    text = data.decode("utf-8")
    try:
        doc = json.loads(text)
    except ValueError:
        # YAML (a superset of JSON) for .yaml files and URLs that serve YAML
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CodegenError(ref, f"cannot parse as JSON or YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise CodegenError(ref, "the document is not a JSON object")
    return doc


def _fetch(url: str, timeout: float) -> bytes:
    import httpx

    try:
        resp = httpx.get(url, timeout=timeout, follow_redirects=True)
        resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise CodegenError(url, f"cannot fetch: {exc}") from exc
    return resp.content


def _runner_document(ref: str, timeout: float) -> bytes:
    """``runner:pkg.module:Class``: host the pipeline on loopback and read its ``/openapi.json``."""
    import importlib

    import anyio

    target = ref.removeprefix("runner:")
    module_name, _, attr = target.partition(":")
    try:
        pipeline = getattr(importlib.import_module(module_name), attr)
        from livepeer.runner import serve
        from livepeer.runner.hosting import hosted
    except (ImportError, AttributeError) as exc:
        raise CodegenError(ref, f"cannot load the runner: {exc}") from exc

    async def main() -> bytes:
        async with hosted(serve(pipeline)) as srv:
            return await anyio.to_thread.run_sync(
                _fetch, srv.url.rstrip("/") + "/openapi.json", timeout
            )

    return anyio.run(main)


def load_source(ref: str, *, root: Path | None = None, timeout: float = 30.0) -> Source:
    """Read a file, an http(s) URL or a ``runner:module:Class`` app: ``load_source("schema.yaml")``."""
    if ref.startswith(("http://", "https://")):
        data = _fetch(ref, timeout)
    elif ref.startswith("runner:"):
        data = _runner_document(ref, timeout)
    else:
        path = Path(ref)
        if not path.is_absolute() and root is not None:
            path = root / path
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CodegenError(ref, f"cannot read: {exc}") from exc
    return Source(ref=ref, document=_parse(data, ref), sha256=sha256_hex(data))


def def_name(name: str) -> str:
    """A class-friendly definition name: ``Body_genImageToImage`` -> ``BodyGenImageToImage``."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    out = "".join(p[:1].upper() + p[1:] for p in parts) or "Schema"
    return "Model" + out if out[0].isdigit() else out


class _Walker:
    """Normalizes schemas of one source into the stored form and collects referenced definitions."""

    def __init__(
        self, source: Source, components: Mapping[str, Any], comp_ptr: str, keep_text: bool
    ) -> None:
        self.source = source
        self.components = components
        self.comp_ptr = comp_ptr
        self.keep_text = keep_text
        self.needed: dict[str, str] = {}  # stored name -> component key

    def where(self, ptr: str) -> str:
        return f"{self.source.ref}#{ptr}"

    def ref_target(self, ref: str, ptr: str) -> str:
        for prefix in (self.comp_ptr + "/", "#/definitions/", "#/$defs/", "#/components/schemas/"):
            if ref.startswith("#" + prefix.lstrip("#")) or ref.startswith(prefix):
                key = ref.split("/")[-1].replace("~1", "/").replace("~0", "~")
                if key not in self.components:
                    raise CodegenError(self.where(ptr), f"$ref {ref!r} points at nothing")
                name = def_name(key)
                other = self.needed.get(name)
                if other is not None and other != key:
                    raise CodegenError(
                        self.where(ptr), f"definitions {other!r} and {key!r} clash as {name!r}"
                    )
                self.needed[name] = key
                return name
        raise CodegenError(
            self.where(ptr), f"unsupported $ref {ref!r} (only local component references)"
        )

    def norm(self, schema: Any, ptr: str) -> dict[str, Any]:
        if schema is True or schema == {}:
            return {}
        if not isinstance(schema, dict):
            raise CodegenError(
                self.where(ptr), f"expected a schema object, got {type(schema).__name__}"
            )
        for key in _UNSUPPORTED:
            if key in schema:
                raise CodegenError(self.where(ptr + pointer(key)), f"unsupported keyword {key!r}")
        out: dict[str, Any] = {}
        for key, value in schema.items():
            at = ptr + pointer(key)
            if key.startswith("x-livepeer-"):
                out[key] = copy.deepcopy(value)
            elif key in ("description", "title"):
                if self.keep_text and key == "description" and isinstance(value, str):
                    out[key] = value
            elif key.startswith("x-") or key in _DROP:
                continue
            elif key not in _KEEP:
                raise CodegenError(self.where(at), f"unsupported keyword {key!r}")
            elif key == "$ref":
                out[key] = "#/definitions/" + self.ref_target(str(value), at)
            elif key == "properties":
                if not isinstance(value, dict):
                    raise CodegenError(self.where(at), "properties must be an object")
                out[key] = {name: self.norm(sub, at + pointer(name)) for name, sub in value.items()}
            elif key in ("items", "additionalProperties"):
                if isinstance(value, bool):
                    out[key] = value
                elif isinstance(value, list):
                    raise CodegenError(
                        self.where(at), "tuple-form items are not supported; use prefixItems"
                    )
                else:
                    out[key] = self.norm(value, at)
            elif key in ("allOf", "anyOf", "oneOf", "prefixItems"):
                if not isinstance(value, list) or not value:
                    raise CodegenError(self.where(at), f"{key} must be a non-empty list")
                out[key] = [self.norm(sub, at + pointer(i)) for i, sub in enumerate(value)]
            elif key == "discriminator":
                disc = dict(value)
                if "mapping" in disc:
                    disc["mapping"] = {
                        k: "#/definitions/" + self.ref_target(str(v), at + pointer("mapping", k))
                        for k, v in disc["mapping"].items()
                    }
                out[key] = disc
            else:
                out[key] = copy.deepcopy(value)
        if out.pop("nullable", False) is True:
            # OpenAPI 3.0 spelling of "may be null": store the JSON Schema form
            if isinstance(out.get("type"), str):
                out["type"] = [out["type"], "null"]
                if "enum" in out and None not in out["enum"]:
                    out["enum"] = [*out["enum"], None]
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        return out

    def component(self, key: str) -> Any:
        return self.components[key]

    def definitions(self) -> dict[str, Any]:
        """Every definition reachable from what was normalized so far (closure), sorted by name."""
        done: dict[str, Any] = {}
        while True:
            todo = [n for n in self.needed if n not in done]
            if not todo:
                break
            for name in todo:
                key = self.needed[name]
                done[name] = self.norm(self.components[key], f"{self.comp_ptr[1:]}/{key}")
        return {name: done[name] for name in sorted(done)}

    def deref(self, schema: Any, ptr: str) -> tuple[Any, str]:
        """Follow a top-level ``$ref`` (once or more) to the component it names."""
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 16:
            ref = str(schema["$ref"])
            key = ref.split("/")[-1].replace("~1", "/").replace("~0", "~")
            if key not in self.components:
                raise CodegenError(self.where(ptr), f"$ref {ref!r} points at nothing")
            schema, ptr, seen = self.components[key], f"{self.comp_ptr[1:]}/{key}", seen + 1
        return schema, ptr


def _mark_media_urls(definitions: dict[str, Any], roots: Iterable[dict[str, Any]]) -> None:
    """AI pipeline responses: a string property named ``url`` is media the runtime turns into FileOutput."""

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                url = props.get("url")
                if isinstance(url, dict) and url.get("type") == "string":
                    url["x-livepeer-file"] = True
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    for root in roots:
        visit(root)
    for value in definitions.values():
        visit(value)


def _op_docs(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        return []
    out = []
    for path, item in paths.items():
        if isinstance(item, dict) and isinstance(item.get("post"), dict):
            out.append((str(path), item["post"]))
    return out


def _capability_from_operation(
    source: Source, walker: _Walker, path: str, op: dict[str, Any], *, runner: bool
) -> dict[str, Any]:
    ptr = pointer("paths", path, "post")
    name = op.get("x-livepeer-capability") or path.strip("/")
    if not isinstance(name, str) or not name:
        raise CodegenError(
            walker.where(ptr), "cannot tell the capability name (no path, no x-livepeer-capability)"
        )
    body = ((op.get("requestBody") or {}).get("content")) or {}
    if not isinstance(body, dict):
        raise CodegenError(walker.where(ptr + "/requestBody/content"), "must be an object")
    in_types = list(body)
    in_schema: Any = None
    in_ptr = ptr + "/requestBody/content"
    for media in ("application/json", "multipart/form-data", "application/x-www-form-urlencoded"):
        if media in body:
            in_schema = body[media].get("schema")
            in_ptr += pointer(media, "schema")
            break
    else:
        if body:
            raise CodegenError(walker.where(in_ptr), f"unsupported request media types {in_types}")
    responses = op.get("responses") or {}
    ok = responses.get("200") or responses.get("201") or {}
    content = ok.get("content") or {}
    out_ptr = ptr + pointer("responses", "200" if "200" in responses else "201", "content")
    out_types = list(content)
    output: Any = None
    events: Any = None
    for media, item in content.items():
        schema = (item or {}).get("schema")
        if media == _SSE:
            events = walker.norm(
                schema if schema is not None else {}, out_ptr + pointer(media, "schema")
            )
        elif media == "application/json":
            output = walker.norm(
                schema if schema is not None else {}, out_ptr + pointer(media, "schema")
            )
        elif output is None:
            output = {"type": "string", "format": "binary"}

    body_schema, body_ptr = (
        walker.deref(in_schema, in_ptr) if in_schema is not None else ({}, in_ptr)
    )
    body_props = body_schema.get("properties") if isinstance(body_schema, dict) else None
    body_props = body_props if isinstance(body_props, dict) else {}
    declared_verbs = op.get("x-livepeer-verbs")
    live = (declared_verbs == ["live"]) or all(k in body_props for k in _LIVE_URLS)

    result: dict[str, Any] = {"format": FORMAT, "name": name, "description": ""}
    if runner and isinstance(op.get("description"), str):
        result["description"] = op["description"]
    media_types: dict[str, list[str]]
    if live:
        route = "byoc-live" if runner else "lv2v"
        verbs = ["live"]
        params = body_props.get("params", {"type": "object", "additionalProperties": True})
        result.update(route=route, verbs=verbs)
        declared_media = op.get("x-livepeer-media-types")
        media_types = (
            {k: list(v) for k, v in declared_media.items()}
            if isinstance(declared_media, dict)
            else {
                "input": ["video/mp2t"],
                "output": ["video/mp2t"],
                "events": ["application/json"],
                "control": ["application/json"],
            }
        )
        result["media_types"] = media_types
        if "model_id" in body_props:
            result["model_parameter"] = "model_id"
        walker.needed.clear()  # the orchestrator's answer is not part of the live verb's surface
        result["params"] = walker.norm(params, body_ptr + "/properties/params")
    else:
        route = "byoc" if runner else "ai-pipeline"
        verbs = [v for v in VERBS if v in (declared_verbs or [])] if declared_verbs else []
        if not verbs:
            verbs = (["run"] if output is not None or events is None else []) + (
                ["stream"] if events else []
            )
        inp = walker.norm(body_schema, body_ptr)
        inp.pop("description", None)
        result.update(route=route, verbs=verbs)
        media_types = {"input": in_types or ["application/json"], "output": out_types}
        result["media_types"] = media_types
        for candidate in ("model_id", "model"):
            prop = body_props.get(candidate)
            if isinstance(prop, dict) and prop.get("type", "string") == "string":
                result["model_parameter"] = candidate
                break
        if (
            route == "ai-pipeline"
            and name in GATEWAY_DEFAULT_MODELS
            and "model_parameter" in result
        ):
            _mark_default_model(inp, result["model_parameter"], GATEWAY_DEFAULT_MODELS[name])
        if route == "ai-pipeline":
            _apply_gateway_defaults(inp, GATEWAY_FIELD_DEFAULTS.get(name, {}))
        stream_prop = body_props.get("stream")
        if (
            not runner
            and events is None
            and isinstance(stream_prop, dict)
            and stream_prop.get("type") == "boolean"
            and output is not None
        ):
            # The AI runner answers `"stream": true` with SSE whose events carry the response model
            # (OpenAI-style chunks); the OpenAPI lists only the JSON answer.
            events = copy.deepcopy(output)
            result["verbs"] = ["run", "stream"]
            result["stream_switch"] = "stream"
            media_types["output"] = [*out_types, _SSE]
        result["input"] = inp
        if output is not None and "run" in result["verbs"]:
            result["output"] = output
        if events is not None:
            result["events"] = events
    definitions = walker.definitions()
    if route == "ai-pipeline":
        _mark_media_urls(
            definitions, [r for r in (result.get("output"), result.get("events")) if r]
        )
    result["definitions"] = definitions
    origin: dict[str, Any] = {"source": source.ref, "sha256": source.sha256, "pointer": ptr}
    info = source.document.get("info") or {}
    if isinstance(info, dict):
        for key in ("title", "version"):
            if isinstance(info.get(key), str):
                origin[key] = info[key]
    result["origin"] = origin
    return result


def import_document(
    source: Source, *, capabilities: Iterable[str] = (), name: str | None = None
) -> list[dict[str, Any]]:
    """Capability documents from a loaded source, in source order (filtered by ``capabilities``)."""
    doc = source.document
    wanted = set(capabilities)
    if "openapi" in doc or "swagger" in doc:
        version = str(doc.get("openapi") or doc.get("swagger"))
        if not version.startswith(("3.0", "3.1")):
            raise CodegenError(
                f"{source.ref}#/openapi", f"unsupported OpenAPI version {version!r} (3.0, 3.1)"
            )
        components = (doc.get("components") or {}).get("schemas") or {}
        runner = "x-livepeer-capability" in doc
        out = []
        for path, op in _op_docs(doc):
            if runner and "x-livepeer-capability" not in op:
                continue
            cap_name = op.get("x-livepeer-capability") or path.strip("/")
            if wanted and cap_name not in wanted:
                continue
            walker = _Walker(source, components, "#/components/schemas", keep_text=runner)
            out.append(_capability_from_operation(source, walker, path, op, runner=runner))
        missing = wanted - {d["name"] for d in out}
        if missing:
            raise CodegenError(source.ref, f"no POST operation for {sorted(missing)}")
        if not out:
            raise CodegenError(f"{source.ref}#/paths", "no POST operations")
        return out
    # Plain JSON Schema: the document is the input of one capability (verb run, untyped result).
    cap = name or (next(iter(wanted)) if len(wanted) == 1 else None) or doc.get("title")
    if not isinstance(cap, str) or not cap:
        raise CodegenError(source.ref, "a JSON Schema source needs --capability NAME (or a title)")
    defs_key = "$defs" if "$defs" in doc else "definitions"
    components = doc.get(defs_key) or {}
    walker = _Walker(source, components, f"#/{defs_key}", keep_text=False)
    body = {k: v for k, v in doc.items() if k not in ("$defs", "definitions")}
    inp = walker.norm(body, "")
    if inp.get("type", "object") != "object":
        raise CodegenError(
            f"{source.ref}#/type", "the input schema of a capability must be an object"
        )
    result: dict[str, Any] = {
        "format": FORMAT,
        "name": cap,
        "description": "",
        "route": "byoc",
        "verbs": ["run"],
        "media_types": {"input": ["application/json"], "output": ["application/json"]},
        "input": inp,
        "output": {},
        "definitions": walker.definitions(),
        "origin": {"source": source.ref, "sha256": source.sha256, "pointer": ""},
    }
    return [result]


# The model go-livepeer's gateway selects orchestrators for when a request names none (server/ai_process.go:32-41
# at 176aa415). The orchestrator has no default: it dereferences the field unchecked (server/ai_http.go:1406),
# so the client always sends one and the wrappers may leave it out.
GATEWAY_DEFAULT_MODELS: dict[str, str] = {
    "text-to-image": "stabilityai/sdxl-turbo",
    "image-to-image": "stabilityai/sdxl-turbo",
    "image-to-video": "stabilityai/stable-video-diffusion-img2vid-xt",
    "upscale": "stabilityai/stable-diffusion-x4-upscaler",
    "audio-to-text": "openai/whisper-large-v3",
    "llm": "meta-llama/llama-3.1-8B-Instruct",
    "segment-anything-2": "facebook/sam2-hiera-large",
    "image-to-text": "Salesforce/blip-image-captioning-large",
    "text-to-speech": "parler-tts/parler-tts-large-v1",
}


# What go-livepeer's gateway sends when a request leaves a field out, where the runner's own default differs:
# text-to-image height and width (server/ai_process.go:213-220; the runner would draw 576x1024). The
# orchestrator bills the same 512x512 when they are absent (server/ai_http.go:1411-1426).
GATEWAY_FIELD_DEFAULTS: dict[str, dict[str, Any]] = {"text-to-image": {"height": 512, "width": 512}}


def _apply_gateway_defaults(inp: dict[str, Any], defaults: dict[str, Any]) -> None:
    props = inp.get("properties")
    for prop_name, value in defaults.items():
        if isinstance(props, dict) and isinstance(props.get(prop_name), dict):
            props[prop_name]["default"] = value


def _mark_default_model(inp: dict[str, Any], prop: str, model: str) -> None:
    """Record the gateway's default model on the model property (``x-livepeer-default-model``); the
    property stops being required."""
    props = inp.get("properties")
    if isinstance(props, dict) and isinstance(props.get(prop), dict):
        props[prop]["x-livepeer-default-model"] = model
    required = inp.get("required")
    if isinstance(required, list) and prop in required:
        required.remove(prop)
        if not required:
            del inp["required"]


def keep_descriptions(new: Any, old: Any) -> Any:
    """Carry our descriptions from a previous import into a fresh one, where the structure still matches."""
    if isinstance(new, dict) and isinstance(old, dict):
        for key, value in new.items():
            if key in old and key != "origin":
                new[key] = keep_descriptions(value, old[key])
        described = old.get("description")
        if isinstance(described, str) and described and not new.get("description"):
            new["description"] = described
        return new
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [keep_descriptions(a, b) for a, b in zip(new, old, strict=True)]
    return new
