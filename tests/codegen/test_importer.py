"""Importing OpenAPI 3.0/3.1, runner /openapi.json and JSON Schema into capability documents."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml

from livepeer.codegen import CodegenError
from livepeer.codegen._importer import Source, import_document, load_source
from livepeer.codegen.cli import import_schemas, main

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
# The facts-only copy of the AI-runner spec made by scripts/vendor_upstream.py (the repo is self-contained).
UPSTREAM = "schemas/upstream/ai-runner-gateway.facts.json"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def doc_of(text: str, ref: str = "mem.yaml") -> Source:
    return Source(ref=ref, document=yaml.safe_load(text), sha256="0" * 64)


def openapi(
    schema: dict[str, Any], version: str = "3.1.0", components: dict[str, Any] | None = None
) -> Source:
    doc = {
        "openapi": version,
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/cap": {
                "post": {
                    "x-livepeer-capability": "cap",
                    "requestBody": {"content": {"application/json": {"schema": schema}}},
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {"type": "string"}}}}
                    },
                }
            }
        },
        "components": {"schemas": components or {}},
    }
    return Source(ref="mem.json", document=doc, sha256="0" * 64)


def test_reimport_of_every_recorded_source_is_idempotent(tmp_path: Path) -> None:
    """`make schemas` keeps committed schemas byte for byte (facts unchanged, our descriptions kept)."""
    for path in SCHEMAS.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    shutil.copy(SCHEMAS / "SOURCES.md", tmp_path / "SOURCES.md")

    def facts() -> dict[str, Any]:
        # the origin's sha256 moves whenever a source document changes anywhere (e.g. a runner's version)
        docs = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
        return {name: {k: v for k, v in doc.items() if k != "origin"} for name, doc in docs.items()}

    before = facts()
    assert main(["import", "--sources", str(tmp_path / "SOURCES.md")]) == 0
    assert facts() == before


def test_every_ai_runner_pipeline_is_covered() -> None:
    upstream = yaml.safe_load((REPO / UPSTREAM).read_text())
    posts = {p.strip("/") for p, item in upstream["paths"].items() if "post" in item}
    names = {json.loads(p.read_text())["name"] for p in SCHEMAS.glob("*.json")}
    assert posts <= names
    assert {"text-reversal", "token-stream", "sentiment", "live-grayscale"} <= names


def test_no_upstream_description_text_is_kept() -> None:
    """Prose in a source never reaches schemas/: seed every node of the spec with text, import, look for it."""
    upstream = yaml.safe_load((REPO / UPSTREAM).read_text())
    texts: list[str] = []

    def seed(node: Any, in_properties: bool = False) -> None:
        if isinstance(node, dict):
            for key, value in list(node.items()):
                seed(value, in_properties=key == "properties")
            if in_properties:
                return
            text = f"upstream prose number {len(texts)} that must not be kept"
            if {"type", "$ref", "properties", "anyOf", "allOf"} & node.keys():  # a schema
                texts.append(text)
                node["description"] = node["title"] = text
            elif {"requestBody", "responses"} & node.keys():  # an operation
                texts.append(text)
                node["description"] = node["summary"] = text
        elif isinstance(node, list):
            for value in node:
                seed(value)

    seed(upstream)
    assert len(texts) > 50
    docs = import_document(Source(ref="seeded.json", document=upstream, sha256="0" * 64))
    ours = json.dumps(docs)
    assert len(docs) >= 10
    assert "upstream prose number" not in ours


def test_vendored_upstream_is_facts_only_and_reproducible(tmp_path: Path) -> None:
    """scripts/vendor_upstream.py keeps structure, names, types, defaults; drops prose; records the origin."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("vendor", REPO / "scripts" / "vendor_upstream.py")
    assert spec is not None
    assert spec.loader is not None
    vendor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vendor)
    source = (
        b"openapi: 3.1.0\ninfo: {title: T, version: '1', description: words}\n"
        b"servers: [{url: 'https://x', description: prose}]\n"
        b"paths:\n  /a:\n    post:\n      summary: prose\n      description: prose\n"
        b"      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/A'}}}}\n"
        b"components:\n  schemas:\n    A:\n      title: A title\n      description: prose\n"
        b"      properties:\n        description: {type: string, default: kept, title: T}\n"
        b"        n: {type: integer, minimum: 1, examples: [3]}\n      required: [n]\n"
    )
    (tmp_path / "in.yaml").write_bytes(source)
    out = tmp_path / "out.json"
    assert vendor.main([str(tmp_path / "in.yaml"), "--origin", "o@1", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert "prose" not in out.read_text()
    assert doc["info"] == {"title": "T", "version": "1"}
    assert "servers" not in doc
    a = doc["components"]["schemas"]["A"]
    assert a["properties"]["description"] == {"type": "string", "default": "kept"}
    assert a["properties"]["n"] == {"type": "integer", "minimum": 1}
    assert a["required"] == ["n"]
    assert doc["x-livepeer-vendored"]["origin"] == "o@1"
    import hashlib

    assert doc["x-livepeer-vendored"]["sha256"] == hashlib.sha256(source).hexdigest()
    # the committed copy carries no prose either
    committed = (REPO / UPSTREAM).read_text()
    assert '"summary"' not in committed
    assert '"x-livepeer-vendored"' in committed


def test_ai_runner_shapes() -> None:
    docs = {d["name"]: d for d in import_document(load_source(UPSTREAM, root=REPO))}
    assert docs["llm"]["verbs"] == ["run", "stream"]
    assert docs["llm"]["stream_switch"] == "stream"
    assert docs["live-video-to-video"]["verbs"] == ["live"]
    assert docs["live-video-to-video"]["route"] == "lv2v"
    assert docs["image-to-image"]["media_types"]["input"] == ["multipart/form-data"]
    assert docs["image-to-image"]["input"]["properties"]["image"]["format"] == "binary"
    assert (
        docs["text-to-image"]["definitions"]["Media"]["properties"]["url"]["x-livepeer-file"]
        is True
    )
    assert docs["text-to-image"]["model_parameter"] == "model_id"
    assert all(d["route"] == "ai-pipeline" for n, d in docs.items() if n != "live-video-to-video")


def test_openapi30_nullable_becomes_json_schema() -> None:
    (doc,) = import_document(
        openapi(
            {
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "nullable": True},
                    "b": {"$ref": "#/components/schemas/B", "nullable": True},
                    "c": {"type": "string", "enum": ["x"], "nullable": True},
                },
            },
            version="3.0.3",
            components={"B": {"type": "object"}},
        )
    )
    props = doc["input"]["properties"]
    assert props["a"]["type"] == ["integer", "null"]
    assert props["b"] == {"anyOf": [{"$ref": "#/definitions/B"}, {"type": "null"}]}
    assert props["c"]["enum"] == ["x", None]


@pytest.mark.parametrize(
    ("schema", "where", "what"),
    [
        (
            {"type": "object", "properties": {"a": {"not": {"type": "string"}}}},
            "/properties/a/not",
            "'not'",
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "other.yaml#/X"}}},
            "/properties/a/$ref",
            "other.yaml",
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/Gone"}}},
            "/properties/a/$ref",
            "Gone",
        ),
        (
            {"type": "object", "patternProperties": {"^x": {}}},
            "/patternProperties",
            "patternProperties",
        ),
        (
            {"type": "object", "properties": {"a": {"items": [{"type": "string"}]}}},
            "/properties/a/items",
            "tuple",
        ),
    ],
)
def test_unsupported_schema_fails_naming_the_path(
    schema: dict[str, Any], where: str, what: str
) -> None:
    with pytest.raises(CodegenError) as info:
        import_document(openapi(schema))
    assert info.value.path.startswith(
        "mem.json#/paths/~1cap/post/requestBody/content/application~1json/schema"
    )
    assert info.value.path.endswith(where)
    assert what in str(info.value)


def test_unsupported_in_a_component_names_the_component() -> None:
    with pytest.raises(CodegenError, match=r"mem.json#/components/schemas/Bad/if"):
        import_document(
            openapi({"$ref": "#/components/schemas/Bad"}, components={"Bad": {"if": {}}})
        )


def test_swagger2_is_rejected() -> None:
    with pytest.raises(CodegenError, match="unsupported OpenAPI version"):
        import_document(Source("s.json", {"swagger": "2.0", "paths": {}}, "0"))


def test_json_schema_source_needs_a_name_and_becomes_a_run_capability() -> None:
    schema = {
        "$defs": {"Item": {"type": "object", "properties": {"n": {"type": "integer"}}}},
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
    }
    src = Source("s.json", schema, "0")
    with pytest.raises(CodegenError, match="--capability"):
        import_document(src)
    (doc,) = import_document(src, capabilities=["counter"])
    assert doc["name"] == "counter"
    assert doc["verbs"] == ["run"]
    assert doc["input"]["properties"]["items"]["items"] == {"$ref": "#/definitions/Item"}
    assert "Item" in doc["definitions"]


def test_capability_filter_and_missing_names() -> None:
    src = load_source(UPSTREAM, root=REPO)
    assert [d["name"] for d in import_document(src, capabilities=["llm"])] == ["llm"]
    with pytest.raises(CodegenError, match="no-such"):
        import_document(src, capabilities=["no-such"])


def test_runner_source_matches_the_committed_schema() -> None:
    (doc,) = import_document(
        load_source("runner:livepeer.devnet.samples.text_reversal:TextReversal")
    )
    committed = json.loads((SCHEMAS / "text-reversal.json").read_text())
    assert {k: v for k, v in doc.items() if k != "origin"} == {
        k: v for k, v in committed.items() if k != "origin"
    }
    assert doc["route"] == "byoc"
    assert doc["description"]  # our runner's own words are kept


def test_import_from_a_url(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from livepeer.runner.hosting import hosted

    body = json.dumps(yaml.safe_load((FIXTURES / "features.openapi.yaml").read_text())).encode()

    async def openapi_json(request: Any) -> Response:
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/openapi.json", openapi_json)])

    async def go() -> list[Path]:
        async with hosted(app) as srv:
            url = srv.url.rstrip("/") + "/openapi.json"
            return await anyio.to_thread.run_sync(
                lambda: import_schemas(url, tmp_path, capabilities=["ticker"])
            )

    (written,) = anyio.run(go)
    doc = json.loads(written.read_text())
    assert doc["verbs"] == ["stream"]
    assert doc["origin"]["source"].startswith("http://127.0.0.1:")
    assert "ticker.json" in (tmp_path / "SOURCES.md").read_text()


def test_unreachable_url_is_a_codegen_error() -> None:
    with pytest.raises(CodegenError, match="cannot fetch"):
        load_source("http://127.0.0.1:9/openapi.json", timeout=2)
    assert httpx  # the importer uses httpx for URLs


def test_cli_reports_errors_with_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    schema = {"type": "object", "not": {}}
    op = {"requestBody": {"content": {"application/json": {"schema": schema}}}, "responses": {}}
    doc = {"openapi": "3.1.0", "info": {"title": "bad"}, "paths": {"/x": {"post": op}}}
    bad.write_text(json.dumps(doc))
    assert main(["import", "--from", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "bad.json#/paths/~1x/post/requestBody/content/application~1json/schema/not" in err


def test_yaml_without_yaml_suffix_and_unparseable_files(tmp_path: Path) -> None:
    src = tmp_path / "spec.txt"
    src.write_text((FIXTURES / "features.openapi.yaml").read_text())
    assert {d["name"] for d in import_document(load_source(str(src)))} == {
        "kitchen-sink",
        "ticker",
        "echo-text",
    }
    broken = tmp_path / "broken.json"
    broken.write_text("{ not: [valid")
    with pytest.raises(CodegenError, match=r"broken\.json: cannot parse"):
        load_source(str(broken))


def test_unknown_keywords_and_vendor_extensions_are_ignored_with_a_warning() -> None:
    warnings: list[str] = []
    (doc,) = import_document(
        openapi(
            {
                "type": "object",
                "properties": {"a": {"type": "string", "frobnicate": 1, "x-tool": 2}},
            }
        ),
        warnings=warnings,
    )
    assert doc["input"]["properties"]["a"] == {"type": "string"}
    assert warnings == [
        "mem.json#/paths/~1cap/post/requestBody/content/application~1json/schema/properties/a/frobnicate: "
        "unknown keyword 'frobnicate' ignored",
        "mem.json#/paths/~1cap/post/requestBody/content/application~1json/schema/properties/a/x-tool: "
        "vendor extension 'x-tool' ignored",
    ]


def test_a_container_document_is_one_capability_named_by_flag_marker_or_title() -> None:
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "My Lab!", "version": "1"},
        "paths": {
            "/a/{id}": {
                "post": {
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/b": {"post": {"responses": {"200": {"description": "ok"}}}},
            "/c": {"get": {"responses": {"200": {"description": "ok"}}}},
        },
    }
    source = Source(ref="lab.json", document=doc, sha256="0" * 64)
    (by_title,) = import_document(source)
    assert by_title["name"] == "my-lab"
    assert [(op["name"], op["path"]) for op in by_title["operations"]] == [
        ("a", "a/{id}"),
        ("b", "b"),
    ]
    assert by_title["operations"][0]["path_parameters"]["required"] == ["id"]
    doc["x-livepeer-capability"] = "lab"
    assert import_document(source)[0]["name"] == "lab"
    assert import_document(source, capabilities=["other"])[0]["name"] == "other"
    with pytest.raises(CodegenError, match="at most one --capability"):
        import_document(source, capabilities=["x", "y"])


def test_default_models_agree_with_the_client() -> None:
    """The importer's docstring facts and the client's request defaults come from one Go table
    (server/ai_process.go:32-41); codegen does not depend on the client, so a test keeps them equal."""
    from livepeer.client._routes.ai_request import DEFAULT_MODELS
    from livepeer.codegen._importer import GATEWAY_DEFAULT_MODELS

    assert dict(DEFAULT_MODELS) == GATEWAY_DEFAULT_MODELS
