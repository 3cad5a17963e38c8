"""Import capability schemas from OpenAPI 3.0/3.1 documents, runner ``/openapi.json`` or JSON Schema.

``import_source("schemas/upstream/ai-runner-gateway.facts.json")`` returns one capability document per
POST pipeline. Facts (names, types, constraints, defaults, enums) are kept; upstream ``description`` and
``title`` texts are dropped unless the source is one of our own runners (it carries ``x-livepeer-*``), so
every description in ``schemas/`` is written by this project (see :func:`keep_descriptions`).
"""

from __future__ import annotations

import copy
import json
import keyword
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
# The AI pipelines an orchestrator serves itself (server/ai_http.go:81-91 at 176aa415); a document whose POST paths
# are all among these is the AI runner's, one capability per pipeline.
BUILTIN_PIPELINES = frozenset(
    {
        "text-to-image", "image-to-image", "image-to-video", "upscale", "audio-to-text",
        "segment-anything-2", "llm", "image-to-text", "live-video-to-video", "text-to-speech",
    }
)  # fmt: skip
_LIVE_URLS = ("subscribe_url", "publish_url")


@dataclass(frozen=True)
class Source:
    """A loaded source document: ``ref`` is what SOURCES.md records (path, URL or ``runner:mod:Class``)."""

    ref: str
    document: dict[str, Any]
    sha256: str


def _parse(data: bytes, ref: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodegenError(ref, f"not UTF-8 text: {exc}") from None
    try:
        doc = json.loads(text)
    except ValueError:
        # YAML (a superset of JSON) for .yaml files and URLs that serve YAML
        import yaml

        # libyaml when available: a 3 MB document loads in well under a second instead of ~15 s
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            doc = yaml.load(text, Loader=loader)
        except yaml.YAMLError as exc:
            raise CodegenError(
                ref, "cannot parse as JSON or YAML: " + " ".join(str(exc).split())
            ) from None
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
    from livepeer.codegen._naming import BUILTINS, to_ascii

    parts = [p for p in re.split(r"[^0-9A-Za-z]+", to_ascii(name)) if p]
    out = "".join(p[:1].upper() + p[1:] for p in parts) or "Schema"
    out = "Model" + out if out[0].isdigit() else out
    # a class named like a builtin or a name the module imports (`Field`, `Any`, `Gateway`) would shadow it
    return out + "Model" if out in BUILTINS or keyword.iskeyword(out) else out


class _Walker:
    """Normalizes schemas of one source into the stored form and collects referenced definitions."""

    def __init__(
        self,
        source: Source,
        components: Mapping[str, Any],
        comp_ptr: str,
        keep_text: bool,
        warnings: list[str] | None = None,
    ) -> None:
        self.warnings = warnings if warnings is not None else []
        self.source = source
        self.components = components
        self.comp_ptr = comp_ptr
        self.keep_text = keep_text
        self.needed: dict[str, str] = {}  # stored name -> component key

    def where(self, ptr: str) -> str:
        return f"{self.source.ref}#{ptr}"

    def warn(self, ptr: str, message: str) -> None:
        text = f"{self.where(ptr)}: {message}"
        if text not in self.warnings:
            self.warnings.append(text)

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
            elif key in _DROP:
                continue
            elif key.startswith("x-"):
                self.warn(at, f"vendor extension {key!r} ignored")
            elif key not in _KEEP:
                self.warn(at, f"unknown keyword {key!r} ignored")
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
        _content_media(out)
        if out.pop("nullable", False) is True:
            # OpenAPI 3.0 spelling of "may be null": store the JSON Schema form
            if isinstance(out.get("type"), str):
                out["type"] = [out["type"], "null"]
                if "enum" in out and None not in out["enum"]:
                    out["enum"] = [*out["enum"], None]
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        return out

    def component_ref(self, ref: Any, kind: str, ptr: str) -> Any:
        """A ``#/components/<kind>/X`` reference (parameters, request bodies, responses), followed."""
        prefix = f"#/components/{kind}/"
        comps = ((self.source.document.get("components") or {}).get(kind)) or {}
        seen = 0
        while isinstance(ref, str) and seen < 16:
            key = ref[len(prefix) :].replace("~1", "/").replace("~0", "~")
            if not ref.startswith(prefix) or key not in comps:
                raise CodegenError(self.where(ptr), f"unsupported or dangling $ref {ref!r}")
            target = comps[key]
            ref, seen = target.get("$ref") if isinstance(target, dict) else None, seen + 1
        return target

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


def _content_media(out: dict[str, Any]) -> None:
    """OpenAPI 3.1 uploads (``contentMediaType``, FastAPI's ``UploadFile``) are files like 3.0's ``binary``."""
    media = out.pop("contentMediaType", None)
    encoding = out.pop("contentEncoding", None)
    if media is None or encoding is not None or "format" in out:
        return  # base64 or other encoded text stays a string
    if (isinstance(media, str) and _is_json(media)) or str(media).startswith("text/"):
        return  # a JSON document or text inside a string
    if out.get("type") in ("string", ["string", "null"]):
        out["format"] = "binary"


def _bare(media: str) -> str:
    """``"application/json; charset=utf-8"`` -> ``"application/json"``."""
    return media.split(";", 1)[0].strip().lower()


def _is_json(media: str) -> bool:
    bare = _bare(media)
    return bare == "application/json" or bare.endswith("+json")


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


_REQUEST_MEDIA = ("json", "multipart/form-data", "application/x-www-form-urlencoded")


def _request_body(walker: _Walker, op: dict[str, Any], ptr: str) -> tuple[list[str], Any, str]:
    """(declared media types, body schema or None, its pointer); media types may carry parameters."""
    body = op.get("requestBody") or {}
    if isinstance(body, dict) and "$ref" in body:
        body = walker.component_ref(body["$ref"], "requestBodies", ptr + "/requestBody")
    content = (body.get("content") if isinstance(body, dict) else None) or {}
    in_ptr = ptr + "/requestBody/content"
    if not isinstance(content, dict):
        raise CodegenError(walker.where(in_ptr), "must be an object")
    in_types = list(content)
    for wanted in _REQUEST_MEDIA:
        for media, item in content.items():
            if (wanted == "json" and _is_json(media)) or _bare(media) == wanted:
                schema = item.get("schema") if isinstance(item, dict) else None
                return in_types, schema, in_ptr + pointer(media, "schema")
    if content:
        raise CodegenError(
            walker.where(in_ptr),
            f"unsupported request media types {in_types} (JSON, multipart/form-data or form fields)",
        )
    return in_types, None, in_ptr


def _responses(walker: _Walker, op: dict[str, Any], ptr: str) -> tuple[Any, Any, list[str]]:
    """(output schema, SSE event schema, media types) of the first 2xx response."""
    responses = op.get("responses") or {}
    if not isinstance(responses, dict):
        raise CodegenError(walker.where(ptr + "/responses"), "must be an object")
    codes = sorted(str(c) for c in responses if re.fullmatch(r"2\d\d|2XX", str(c)))
    code = "200" if "200" in codes else "201" if "201" in codes else codes[0] if codes else None
    ok = responses.get(code) if code is not None else None
    if code is not None and code not in responses:
        ok = responses.get(int(code)) if code.isdigit() else None
    if isinstance(ok, dict) and "$ref" in ok:
        ok = walker.component_ref(ok["$ref"], "responses", ptr + pointer("responses", str(code)))
    content = (ok.get("content") if isinstance(ok, dict) else None) or {}
    out_ptr = ptr + pointer("responses", str(code), "content")
    output: Any = None
    events: Any = None
    for media, item in content.items():
        schema = (item or {}).get("schema") if isinstance(item, dict) else None
        at = out_ptr + pointer(media, "schema")
        if _bare(media) == _SSE:
            # no declared event schema: events are the decoded data, untyped
            events = walker.norm(schema if schema is not None else {}, at)
        elif _is_json(media):
            if output is None or output.get("format") == "binary":
                output = walker.norm(schema if schema is not None else {}, at)
        elif output is None:
            output = {"type": "string", "format": "binary"}
    return output, events, list(content)


def _capability_from_operation(
    source: Source,
    walker: _Walker,
    path: str,
    op: dict[str, Any],
    *,
    runner: bool,
    explicit: bool = False,
) -> dict[str, Any]:
    """One capability from one operation: the AI runner's pipelines (``runner`` and ``explicit`` false),
    ``livepeer.runner`` documents (``runner``) and operations marked ``x-livepeer-capability`` (``explicit``)."""
    ptr = pointer("paths", path, "post")
    path_params = _path_parameters(walker, path, op, ptr, allow=runner or explicit)
    name = op.get("x-livepeer-capability") or path.strip("/")
    if not isinstance(name, str) or not name:
        raise CodegenError(
            walker.where(ptr), "cannot tell the capability name (no path, no x-livepeer-capability)"
        )
    in_types, in_schema, in_ptr = _request_body(walker, op, ptr)
    output, events, out_types = _responses(walker, op, ptr)

    body_schema, body_ptr = (
        walker.deref(in_schema, in_ptr) if in_schema is not None else ({}, in_ptr)
    )
    body_props = body_schema.get("properties") if isinstance(body_schema, dict) else None
    body_props = body_props if isinstance(body_props, dict) else {}
    declared_verbs = op.get("x-livepeer-verbs")
    live = (declared_verbs == ["live"]) or all(k in body_props for k in _LIVE_URLS)

    result: dict[str, Any] = {"format": FORMAT, "name": name, "description": ""}
    if runner or explicit:
        result["description"] = _op_text(op)
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
        route = "byoc" if runner or explicit else "ai-pipeline"
        verbs = [v for v in VERBS if v in (declared_verbs or [])] if declared_verbs else []
        if not verbs:
            verbs = _default_verbs(output, events)
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
        if explicit:
            result.pop("model_parameter", None)  # BYOC routes on the capability alone
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
            and not explicit
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
        if explicit and path.strip("/"):
            result["path"] = path.strip("/")
        if path_params is not None:
            result["path_parameters"] = path_params
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


def _op_text(op: dict[str, Any]) -> str:
    for key in ("description", "summary"):
        if isinstance(op.get(key), str) and op[key].strip():
            return str(op[key]).strip()
    return ""


def _default_verbs(output: Any, events: Any) -> list[str]:
    return (["run"] if output is not None or events is None else []) + (
        ["stream"] if events is not None else []
    )


# go-livepeer forwards a BYOC job to the worker as POST {capability URL}/{route} with the body, Content-Type
# and Content-Length only (byoc/job_orchestrator.go:255-274 at 176aa415): the query string and every other
# header stay at the orchestrator. The AI routes (server/ai_http.go) take the body alone.
_UNREACHABLE = (
    "cannot reach the worker: go-livepeer's orchestrator forwards only the URL path, the body and its "
    "Content-Type (byoc/job_orchestrator.go:255-274)"
)
_PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")


def _path_parameters(
    walker: _Walker, path: str, op: dict[str, Any], ptr: str, *, allow: bool
) -> dict[str, Any] | None:
    """The route's ``{parameters}`` as a JSON Schema object; any other parameter is an error naming it."""
    item = (walker.source.document.get("paths") or {}).get(path) or {}
    declared: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
    for where, params in (
        (pointer("paths", path, "parameters"), item.get("parameters")),
        (ptr + "/parameters", op.get("parameters")),
    ):
        if params is None:
            continue
        if not isinstance(params, list):
            raise CodegenError(walker.where(where), "parameters must be a list")
        for i, param in enumerate(params):
            at = where + pointer(i)
            if isinstance(param, dict) and "$ref" in param:
                param = walker.component_ref(param["$ref"], "parameters", at)
            if not isinstance(param, dict) or not isinstance(param.get("name"), str):
                raise CodegenError(walker.where(at), "a parameter needs a name")
            declared[(str(param.get("in")), param["name"])] = (param, at)
    props: dict[str, Any] = {}
    for (where_in, pname), (param, at) in declared.items():
        if where_in != "path":
            raise CodegenError(walker.where(at), f"{where_in} parameter {pname!r} {_UNREACHABLE}")
        if not allow:
            raise CodegenError(
                walker.where(at),
                f"path parameter {pname!r}: a built-in AI pipeline has no sub-routes",
            )
        if "schema" not in param:
            raise CodegenError(walker.where(at), f"path parameter {pname!r} has no schema")
        schema = walker.norm(param["schema"], at + "/schema")
        if isinstance(param.get("description"), str) and walker.keep_text:
            schema.setdefault("description", param["description"])
        target, _ = walker.deref(param["schema"], at + "/schema")
        target = target if isinstance(target, dict) else {}
        kind = target.get("type")
        kinds = set(kind) if isinstance(kind, list) else {kind}
        structured = any(k in target for k in ("properties", "items", "anyOf", "oneOf", "allOf"))
        if not kinds <= {"string", "integer", "number", "boolean", None} or structured:
            raise CodegenError(
                walker.where(at + "/schema"),
                f"path parameter {pname!r}: only strings, numbers, booleans and enums fit in a URL path",
            )
        props[pname] = schema
    names = _PLACEHOLDER.findall(path)
    for pname in names:
        if pname not in props:
            raise CodegenError(walker.where(ptr), f"path parameter {{{pname}}} is not declared")
    for pname in props:
        if pname not in names:
            raise CodegenError(
                walker.where(ptr + "/parameters"),
                f"path parameter {pname!r} is not in the path {path!r}",
            )
    if not props:
        return None
    return {"type": "object", "required": names, "properties": {n: props[n] for n in names}}


def _operation_name(op: dict[str, Any], path: str, taken: set[str]) -> str:
    """``/pets/{id}/photo`` -> ``pets_photo``; ``x-livepeer-operation`` or the operationId on a clash."""
    from livepeer.codegen._naming import method_name

    explicit = op.get("x-livepeer-operation")
    if isinstance(explicit, str) and explicit:
        candidates = [explicit]
    else:
        literal = [p for p in path.strip("/").split("/") if p and not _PLACEHOLDER.fullmatch(p)]
        params = _PLACEHOLDER.findall(path)
        candidates = ["_".join(literal) or "call"]
        if params:
            candidates.append(candidates[0] + "_by_" + "_".join(params))
        if isinstance(op.get("operationId"), str):
            candidates.append(op["operationId"])
    for candidate in candidates:
        name = method_name(candidate)
        if name not in taken:
            taken.add(name)
            return name
    base, n = method_name(candidates[0]), 2
    while f"{base}_{n}" in taken:
        n += 1
    taken.add(f"{base}_{n}")
    return f"{base}_{n}"


def _byoc_capability(
    source: Source, walker: _Walker, name: str, ops: list[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    """A user's container: one document = one capability, each POST operation a route (docs/codegen.md)."""
    doc = source.document
    info: dict[str, Any] = doc["info"] if isinstance(doc.get("info"), dict) else {}
    if doc.get("security") or any(op.get("security") for _, op in ops):
        walker.warn(
            "/security",
            "security requirements ignored: callers cannot send credentials to the worker; the orchestrator "
            "sends the Authorization token registered with the capability (byoc/job_orchestrator.go:276-281)",
        )
    result: dict[str, Any] = {
        "format": FORMAT,
        "name": name,
        "description": str(info.get("description") or "").strip() if walker.keep_text else "",
        "route": "byoc",
        "verbs": [],
    }
    operations: list[dict[str, Any]] = []
    taken: set[str] = {"run", "stream", "live", "name"}
    for path, op in ops:
        ptr = pointer("paths", path, "post")
        path_params = _path_parameters(walker, path, op, ptr, allow=True)
        in_types, in_schema, in_ptr = _request_body(walker, op, ptr)
        output, events, out_types = _responses(walker, op, ptr)
        body, body_ptr = walker.deref(in_schema, in_ptr) if in_schema is not None else ({}, in_ptr)
        if in_schema is not None:
            _check_object_body(walker, body, body_ptr)
            _check_body_media(walker, in_ptr, body)
        inp = walker.norm(in_schema, in_ptr) if in_schema is not None else {"type": "object"}
        if inp.get("$ref") is None:
            inp.pop("description", None)
        entry: dict[str, Any] = {
            "description": _op_text(op),
            "path": path.strip("/"),
            "verbs": _default_verbs(output, events),
            "media_types": {"input": in_types or ["application/json"], "output": out_types},
        }
        if path_params is not None:
            entry["path_parameters"] = path_params
        entry["input"] = inp
        if output is not None and "run" in entry["verbs"]:
            entry["output"] = output
        if events is not None:
            entry["events"] = events
        entry["pointer"] = ptr
        if not entry["path"] and "" not in [o["path"] for o in operations] and not result["verbs"]:
            # the container's own URL: the capability's run/stream
            result.update(
                description=result["description"] or entry["description"],
                verbs=entry["verbs"],
                media_types=entry["media_types"],
                input=inp,
            )
            for key in ("output", "events"):
                if key in entry:
                    result[key] = entry[key]
            continue
        entry["name"] = _operation_name(op, path, taken)
        operations.append(entry)
    if operations:
        result["operations"] = operations
    result["definitions"] = walker.definitions()
    origin: dict[str, Any] = {"source": source.ref, "sha256": source.sha256, "pointer": "/paths"}
    for key in ("title", "version"):
        if isinstance(info.get(key), str):
            origin[key] = info[key]
    result["origin"] = origin
    return result


def _check_object_body(walker: _Walker, body: Any, ptr: str) -> None:
    """The client sends a JSON object or multipart form fields: other bodies cannot be sent."""
    if not isinstance(body, dict):
        return
    kind = body.get("type")
    if kind is not None and kind != "object" and not (isinstance(kind, list) and "object" in kind):
        raise CodegenError(
            walker.where(ptr),
            f"request body of type {kind!r}: the client sends a JSON object or multipart form fields "
            "(wrap the value in an object)",
        )


def _check_body_media(walker: _Walker, ptr: str, body: Any) -> None:
    """The client sends JSON, or multipart/form-data when a call carries files (see docs/codegen.md)."""
    media = ptr.rsplit("/", 2)[-2].replace("~1", "/").replace("~0", "~")
    if _bare(media) == "application/x-www-form-urlencoded":
        raise CodegenError(
            walker.where(ptr),
            "application/x-www-form-urlencoded bodies cannot be sent: the client sends JSON, or "
            "multipart/form-data when a call carries files",
        )
    if _bare(media) == "multipart/form-data" and isinstance(body, dict):
        props = body.get("properties") or {}
        required = set(body.get("required") or [])
        if not any(_is_file_schema(props.get(name)) for name in required):
            walker.warn(
                ptr,
                "multipart/form-data body without a required file: a call that carries no file is sent "
                "as JSON",
            )


def _is_file_schema(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    if node.get("format") == "binary" or "contentMediaType" in node:
        return True
    items = node.get("items")
    return node.get("type") == "array" and _is_file_schema(items)


def capability_name(text: str, where: str) -> str:
    """A capability name the orchestrator can route on (a header value): printable, at most 128 chars."""
    if not text or len(text) > 128 or not text.isprintable() or text != text.strip():
        raise CodegenError(
            where, f"unusable capability name {text!r} (printable, 1-128 characters)"
        )
    return text


def import_document(
    source: Source,
    *,
    capabilities: Iterable[str] = (),
    name: str | None = None,
    warnings: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Capability documents from a loaded source, in source order (filtered by ``capabilities``).

    The mapping (docs/codegen.md): operations marked ``x-livepeer-capability`` are one capability each; a
    document whose POST paths are all built-in AI pipelines keeps one capability per pipeline; any other
    document is one BYOC capability whose POST operations are routes. ``warnings`` collects what was ignored.
    """
    from livepeer.codegen._naming import slug

    doc = source.document
    wanted = set(capabilities)
    warnings = warnings if warnings is not None else []
    if "openapi" in doc or "swagger" in doc:
        version = str(doc.get("openapi") or doc.get("swagger"))
        if not version.startswith(("3.0", "3.1")):
            raise CodegenError(
                f"{source.ref}#/openapi", f"unsupported OpenAPI version {version!r} (3.0, 3.1)"
            )
        components = (doc.get("components") or {}).get("schemas") or {}
        if not isinstance(components, dict):
            raise CodegenError(f"{source.ref}#/components/schemas", "must be an object")
        ops = _op_docs(doc)
        marked = any("x-livepeer-capability" in op for _, op in ops)
        runner = "x-livepeer-capability" in doc and marked
        builtin = bool(ops) and all(p.strip("/") in BUILTIN_PIPELINES for p, _ in ops)
        if not marked and not builtin:
            if len(wanted) > 1:
                raise CodegenError(
                    source.ref,
                    "this document is one BYOC capability: give at most one --capability",
                )
            info: dict[str, Any] = doc["info"] if isinstance(doc.get("info"), dict) else {}
            cap_name = (
                next(iter(wanted), None)
                or doc.get("x-livepeer-capability")
                or info.get("x-livepeer-capability")
                or slug(str(info.get("title") or ""))
            )
            if not ops:
                raise CodegenError(f"{source.ref}#/paths", "no POST operations")
            if not isinstance(cap_name, str) or not cap_name:
                raise CodegenError(
                    f"{source.ref}#/info/title",
                    "cannot tell the capability name: give --capability NAME",
                )
            walker = _Walker(source, components, "#/components/schemas", True, warnings)
            cap_name = capability_name(cap_name, f"{source.ref}#/info")
            return [_byoc_capability(source, walker, cap_name, ops)]
        out = []
        for path, op in ops:
            if marked and "x-livepeer-capability" not in op:
                continue
            cap_name = op.get("x-livepeer-capability") or path.strip("/")
            if wanted and cap_name not in wanted:
                continue
            capability_name(
                str(cap_name),
                f"{source.ref}#{pointer('paths', path, 'post', 'x-livepeer-capability')}",
            )
            walker = _Walker(source, components, "#/components/schemas", runner or marked, warnings)
            out.append(
                _capability_from_operation(
                    source, walker, path, op, runner=runner, explicit=marked and not runner
                )
            )
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
    cap = capability_name(cap if cap != doc.get("title") else slug(cap) or cap, source.ref)
    defs_key = "$defs" if "$defs" in doc else "definitions"
    components = doc.get(defs_key) or {}
    walker = _Walker(source, components, f"#/{defs_key}", True, warnings)
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
