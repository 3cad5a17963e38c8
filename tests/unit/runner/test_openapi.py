"""``/openapi.json``: golden documents, OpenAPI 3.1 validity, and how signatures map to schemas.

Regenerate the golden files after an intended change with ``LIVEPEER_UPDATE_GOLDEN=1 pytest tests/unit/runner``.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from openapi_spec_validator import validate
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from livepeer.runner import (
    LivePipeline,
    Pipeline,
    PipelineDefinitionError,
    openapi_json,
    openapi_schema,
)

GOLDEN = Path(__file__).parent / "golden"


class Box(BaseModel):
    x: int
    y: int
    label: Literal["cat", "dog"]


class Detections(BaseModel):
    boxes: list[Box]
    model: str | None = None


class Detect(Pipeline):
    """Find animals in a picture.

    The second paragraph is not part of the description.
    """

    name = "detect"
    version = "1.2.3"

    def predict(
        self,
        image_url: Annotated[str, Field(description="Where the picture is.")],
        threshold: Annotated[float, Field(ge=0, le=1)] = 0.5,
        classes: list[Literal["cat", "dog"]] | None = None,
        region: Box | None = None,
    ) -> Detections:
        return Detections(boxes=[])


class Usage(TypedDict):
    tokens: int


class Chunk(BaseModel):
    text: str
    usage: Usage | None = None


class Chat(Pipeline):
    input_model_name = "ChatRequest"

    async def predict(self, prompt: str, stream: bool = False) -> Chunk | AsyncIterator[Chunk]:
        return Chunk(text=prompt)


class Words(Pipeline):
    def predict(self, text: str) -> Iterator[str]:
        yield from text.split()


class Png(Pipeline):
    output_media_type = "image/png"

    def predict(self, size: int = 8) -> bytes:
        return b""


class Style(BaseModel):
    strength: Annotated[float, Field(ge=0, le=1)] = 0.5
    prompt: str = ""


class Stylise(LivePipeline):
    """Restyle live video."""

    params_model = Style


class Plain(LivePipeline):
    pass


CASES: dict[str, type[Pipeline] | type[LivePipeline]] = {
    "detect": Detect,
    "chat": Chat,
    "words": Words,
    "png": Png,
    "stylise": Stylise,
    "plain": Plain,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    path = GOLDEN / f"{case}.json"
    actual = openapi_json(CASES[case])
    if os.environ.get("LIVEPEER_UPDATE_GOLDEN"):
        path.write_bytes(actual)
    assert actual.decode() == path.read_text()


@pytest.mark.parametrize("case", sorted(CASES))
def test_valid_openapi_31_with_valid_json_schemas(case: str) -> None:
    doc = openapi_schema(CASES[case])
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    components = doc["components"]
    assert isinstance(components, dict)
    for schema in components["schemas"].values():
        Draft202012Validator.check_schema(schema)
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.removeprefix("#/components/schemas/") in components["schemas"], ref


def test_output_is_byte_reproducible() -> None:
    assert openapi_json(Detect) == openapi_json(Detect())
    assert openapi_json(Detect).endswith(b"}\n")


def op(doc: dict[str, Any], path: str = "/") -> dict[str, Any]:
    return doc["paths"][path]["post"]  # type: ignore[no-any-return]


def test_batch_document_describes_inputs_outputs_and_extensions() -> None:
    doc: dict[str, Any] = openapi_schema(Detect)
    assert doc["info"] == {
        "title": "detect",
        "version": "1.2.3",
        "description": "Find animals in a picture.",
    }
    assert doc["x-livepeer-capability"] == "detect"
    assert doc["x-livepeer-verbs"] == ["run"]
    post = op(doc)
    assert post["x-livepeer-verbs"] == ["run"]
    assert post["x-livepeer-media-types"] == {
        "input": ["application/json"],
        "output": ["application/json"],
    }
    body = doc["components"]["schemas"]["DetectInput"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DetectInput"
    }
    assert body["required"] == ["image_url"]
    assert list(body["properties"]) == ["image_url", "threshold", "classes", "region"]
    assert body["properties"]["threshold"] == {
        "default": 0.5,
        "maximum": 1,
        "minimum": 0,
        "title": "Threshold",
        "type": "number",
    }
    assert body["additionalProperties"] is False
    ok = post["responses"]["200"]["content"]
    assert ok == {"application/json": {"schema": {"$ref": "#/components/schemas/Detections"}}}
    assert set(post["responses"]) == {"200", "401", "413", "422", "500", "503"}


def test_value_or_stream_lists_both_media_types() -> None:
    doc: dict[str, Any] = openapi_schema(Chat)
    assert doc["x-livepeer-verbs"] == ["run", "stream"]
    content = op(doc)["responses"]["200"]["content"]
    assert list(content) == ["application/json", "text/event-stream"]
    assert content["text/event-stream"]["schema"] == {"$ref": "#/components/schemas/Chunk"}
    assert content["text/event-stream"]["x-livepeer-sse"] == {
        "encoding": "json",
        "terminator": "[DONE]",
    }
    assert "ChatRequest" in doc["components"]["schemas"]
    assert "Usage" in doc["components"]["schemas"]


def test_stream_only_and_bytes() -> None:
    words: dict[str, Any] = openapi_schema(Words)
    assert words["x-livepeer-verbs"] == ["stream"]
    assert op(words)["responses"]["200"]["content"] == {
        "text/event-stream": {
            "schema": {"type": "string"},
            "x-livepeer-sse": {"encoding": "json", "terminator": "[DONE]"},
        }
    }
    png: dict[str, Any] = openapi_schema(Png)
    assert op(png)["responses"]["200"]["content"] == {
        "image/png": {"schema": {"type": "string", "format": "binary"}}
    }
    assert png["x-livepeer-media-types"]["output"] == ["image/png"]


def test_live_document() -> None:
    doc: dict[str, Any] = openapi_schema(Stylise)
    assert doc["x-livepeer-verbs"] == ["live"]
    assert doc["x-livepeer-media-types"]["input"] == ["video/mp2t"]
    start = op(doc, "/stream/start")
    assert start["operationId"] == "startStream"
    assert start["x-livepeer-capability"] == "stylise"
    assert "409" in start["responses"]
    params = doc["components"]["schemas"]["LiveStreamStart"]["properties"]["params"]
    assert params["$ref"] == "#/components/schemas/Style"
    assert op(doc, "/stream/params")["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Style"
    }
    plain: dict[str, Any] = openapi_schema(Plain)
    assert (
        plain["components"]["schemas"]["LiveStreamStart"]["properties"]["params"]["type"]
        == "object"
    )
    assert openapi_schema(Plain, name="other")["x-livepeer-capability"] == "other"


class NoAnnotation(Pipeline):
    def predict(self, text):  # type: ignore[no-untyped-def]
        return text


class VarArgs(Pipeline):
    def predict(self, **kwargs: int) -> int:
        return 0


class PositionalOnly(Pipeline):
    def predict(self, x: int, /) -> int:
        return x


class Private(Pipeline):
    def predict(self, _hidden: int) -> int:
        return 0


class BadGenerator(Pipeline):
    def predict(self, n: int) -> int:  # type: ignore[misc]
        yield n


class NoPredict(Pipeline):
    pass


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (NoAnnotation, "needs a type annotation"),
        (VarArgs, "only named parameters"),
        (PositionalOnly, "only named parameters"),
        (Private, "cannot start with '_'"),
        (BadGenerator, "is a generator"),
        (NoPredict, "must define predict"),
    ],
)
def test_definition_errors_name_the_problem(cls: type[Pipeline], message: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=message):
        openapi_schema(cls)
