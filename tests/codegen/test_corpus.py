"""Corpus: `livepeer generate` on the schemas users have (issue 14).

Every document (facts-only AI-runner versions, a FastAPI app's schema made here, petstore-style documents and
one small case per construct) is generated, imported and called once per operation against a recording
gateway (validation and serialization, no I/O); mypy --strict runs once over the whole generated corpus.
Refused constructs fail with one line naming the construct and its JSON pointer, exit status 2.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import importlib
import inspect
import ipaddress
import json
import pkgutil
import subprocess
import sys
import types
import typing
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
import pydantic
import pytest

from livepeer.codegen.cli import main

from .corpus_cases import REFUSED, SUPPORTED

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"


def fastapi_openapi() -> dict[str, Any]:
    from .fastapi_app import app

    schema: dict[str, Any] = app.openapi()
    return schema


def petstore() -> dict[str, Any]:
    pet = {
        "type": "object",
        "required": ["name", "photoUrls"],
        "properties": {
            "id": {"type": "integer", "format": "int64", "readOnly": True},
            "name": {"type": "string", "example": "doggie"},
            "category": {"$ref": "#/components/schemas/Category"},
            "photoUrls": {"type": "array", "items": {"type": "string"}},
            "status": {"type": "string", "enum": ["available", "pending", "sold"]},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Swagger Petstore", "version": "1.0.17", "description": "Pets."},
        "paths": {
            "/pet": {
                "post": {
                    "operationId": "addPet",
                    "summary": "Add a new pet to the store",
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}},
                            "application/xml": {"schema": {"$ref": "#/components/schemas/Pet"}},
                        }
                    },
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}
                            },
                        }
                    },
                    "security": [{"petstore_auth": ["write:pets"]}],
                },
                "get": {"responses": {"200": {"description": "ok"}}},
            },
            "/pet/{petId}/uploadImage": {
                "post": {
                    "operationId": "uploadFile",
                    "parameters": [
                        {
                            "name": "petId",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    "requestBody": {
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"file": {"type": "string", "format": "binary"}},
                                }
                            }
                        }
                    },
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/ApiResponse"}
                                }
                            },
                        }
                    },
                }
            },
            "/store/order": {
                "post": {
                    "operationId": "placeOrder",
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Order"}}
                        }
                    },
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Order"}
                                }
                            },
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Pet": pet,
                "Category": {
                    "type": "object",
                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                },
                "ApiResponse": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "integer", "format": "int32"},
                        "type": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
                "Order": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer", "format": "int64"},
                        "petId": {"type": "integer", "format": "int64"},
                        "shipDate": {"type": "string", "format": "date-time"},
                        "status": {"type": "string", "enum": ["placed", "approved", "delivered"]},
                        "complete": {"type": "boolean", "default": False},
                    },
                },
            }
        },
    }


def _documents() -> dict[str, dict[str, Any]]:
    docs = {f"case_{name}": d for name, d in SUPPORTED.items()}
    docs["fastapi_app"] = fastapi_openapi()
    docs["petstore"] = petstore()
    for path in sorted(CORPUS.glob("*.json")):
        docs["airunner_" + path.stem.split("-")[-1].replace(".", "_")] = json.loads(
            path.read_text()
        )
    return docs


class Recorded(Exception):
    """Raised by the recording gateway after a run call: the test needs the request, not a result."""


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def _record(self, verb: str, capability: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((verb, capability, kwargs))

    def run(self, capability: str, **kwargs: Any) -> object:
        self._record("run", capability, kwargs)
        raise Recorded

    def stream(self, capability: str, **kwargs: Any) -> object:
        self._record("stream", capability, kwargs)
        return iter(())


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, dict[str, types.ModuleType]]]:
    base = tmp_path_factory.mktemp("corpus")
    src = tmp_path_factory.mktemp("corpus_src")
    packages: dict[str, types.ModuleType] = {}
    sys.path.insert(0, str(base))
    try:
        for name, document in _documents().items():
            source = src / f"{name}.json"
            source.write_text(json.dumps(document))
            code = main(["generate", "--from", str(source), "--out", str(base / name)])
            assert code == 0, name
            packages[name] = importlib.import_module(name)
        yield base, packages
    finally:
        sys.path.remove(str(base))
        for mod in [m for m in sys.modules if m.split(".")[0] in packages]:
            del sys.modules[mod]


def test_whole_corpus_passes_mypy_strict(corpus: tuple[Path, dict[str, types.ModuleType]]) -> None:
    base, packages = corpus
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            "/dev/null",
            *sorted(packages),
        ],
        capture_output=True,
        text=True,
        cwd=base,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    checked = int(proc.stdout.split(" in ")[-1].split()[0])
    assert checked >= 2 * len(packages)  # __init__ and at least one capability module each


# -- one valid call per operation --------------------------------------------------------------------------


def _is_file_type(meta: list[Any]) -> bool:
    return any(type(m).__name__ == "PlainValidator" for m in meta)


def sample(tp: Any, meta: list[Any] | None = None) -> Any:
    """A valid value for an annotation of the generated code (respecting simple constraints)."""
    meta = list(meta or [])
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return sample(args[0], meta + list(tp.__metadata__))
    if _is_file_type(meta):
        return b"\x89PNG file bytes"
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return sample(options[0], meta) if options else None
    if origin is typing.Literal:
        return args[0]
    low = next((int(m.min_length) for m in meta if isinstance(m, annotated_types.MinLen)), 0)
    if origin in (list, set, frozenset) or tp in (list,):
        item = sample(args[0]) if args else "x"
        return [item] * max(1, low)
    if origin is tuple:
        return tuple(sample(a) for a in args if a is not Ellipsis)
    if origin is dict or tp is dict:
        return {}
    if isinstance(tp, type) and issubclass(tp, pydantic.RootModel):
        return tp(
            sample(tp.model_fields["root"].annotation, list(tp.model_fields["root"].metadata))
        )
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        values = {
            name: sample(f.annotation, list(f.metadata))
            for name, f in tp.model_fields.items()
            if f.is_required()
        }
        return tp(**values)
    if tp is bool:
        return True
    if tp in (int, float):
        value = 1
        for m in meta:
            if isinstance(m, (annotated_types.Ge, annotated_types.Gt)):
                value = max(value, int(getattr(m, "ge", getattr(m, "gt", 0))) + 1)
            if isinstance(m, (annotated_types.Le, annotated_types.Lt)):
                value = min(value, int(getattr(m, "le", getattr(m, "lt", 2))) - 1)
        return tp(value)
    if tp is str:
        return "a" * max(1, low)
    if tp is bytes:
        return b"x"
    known: dict[Any, Any] = {
        uuid.UUID: uuid.UUID(int=7),
        dt.datetime: dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        dt.date: dt.date(2024, 1, 2),
        dt.time: dt.time(3, 4),
        dt.timedelta: dt.timedelta(seconds=90),
        decimal.Decimal: decimal.Decimal("1.5"),
        ipaddress.IPv4Address: ipaddress.IPv4Address("127.0.0.1"),
        ipaddress.IPv6Address: ipaddress.IPv6Address("::1"),
    }
    if tp in known:
        return known[tp]
    if isinstance(tp, type) and tp.__name__ == "AwareDatetime":
        return known[dt.datetime]
    if tp is pydantic.AnyUrl or (isinstance(tp, type) and issubclass(tp, pydantic.AnyUrl)):
        return tp("https://example.com/x")
    if tp is Any or tp is object:
        return "value"
    raise AssertionError(f"no sample for {tp!r}")


def _calls(module: types.ModuleType) -> Iterator[tuple[str, Any]]:
    cls = next(
        v
        for v in vars(module).values()
        if isinstance(v, type)
        and v.__module__ == module.__name__
        and isinstance(getattr(v, "name", None), str)
    )
    wrapper = cls(Recorder())
    for name, _fn in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("_") or name.endswith("_async") or name == "live":
            continue
        yield f"{module.__name__}.{cls.__name__}.{name}", getattr(wrapper, name)


def test_one_call_per_operation_validates_and_serializes(
    corpus: tuple[Path, dict[str, types.ModuleType]],
) -> None:
    done = 0
    for pkg in corpus[1].values():
        for info in pkgutil.iter_modules(pkg.__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            for label, method in _calls(module):
                hints = typing.get_type_hints(method, vars(module), include_extras=True)
                params = inspect.signature(method).parameters
                kwargs = {
                    n: sample(hints[n])
                    for n, p in params.items()
                    if p.default is inspect.Parameter.empty and p.kind is p.KEYWORD_ONLY
                }
                recorder: Recorder = method.__self__._gateway
                with contextlib.suppress(Recorded):
                    method(**kwargs)
                _, _, sent = recorder.calls[-1]
                payload = sent["input"]
                files = {
                    k
                    for k, v in payload.items()
                    if isinstance(v, bytes)
                    or (isinstance(v, list) and v and all(isinstance(x, bytes) for x in v))
                }
                json.dumps({k: v for k, v in payload.items() if k not in files})  # serializes
                assert "path" not in sent or "{" not in sent["path"], label
                done += 1
    assert done >= 50


def test_calls_reach_the_declared_routes_with_wire_names(
    corpus: tuple[Path, dict[str, types.ModuleType]],
) -> None:
    pkgs = corpus[1]
    lab = importlib.import_module("fastapi_app.image_lab")
    rec = Recorder()
    wrapper = lab.ImageLab(rec)
    job = lab.Job(
        id=uuid.UUID(int=1),
        at=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        source="https://x.org",
    )
    with pytest.raises(Recorded):
        wrapper.items(item_id=42, id=job.id, at=job.at, source=job.source)
    verb, cap, sent = rec.calls[-1]
    assert (verb, cap, sent["path"]) == ("run", "image-lab", "items/42")
    assert sent["input"]["id"] == "00000000-0000-0000-0000-000000000001"
    assert sent["input"]["at"] == "2024-01-01T00:00:00Z"
    with pytest.raises(pkgs["fastapi_app"].InputValidationError, match="item_id"):
        wrapper.items(item_id="x", id=job.id, at=job.at, source=job.source)
    with pytest.raises(pkgs["fastapi_app"].InputValidationError, match="bucket"):
        wrapper.upload(bucket="a/../b", file=b"x")
    wrapper.chat(room="r 1", id=job.id, at=job.at, source=job.source)
    assert rec.calls[-1][0] == "stream"
    assert rec.calls[-1][2]["path"] == "chat/r 1"
    # descriptions from the user's document are kept in their package
    assert "Store files in a bucket." in (wrapper.upload.__doc__ or "")
    assert "The user's own container." in (lab.ImageLab.__doc__ or "")


def test_name_collisions_resolve_to_distinct_names(
    corpus: tuple[Path, dict[str, types.ModuleType]],
) -> None:
    mod = importlib.import_module("case_name_collisions.names_")
    cls = mod.NamesCapability if hasattr(mod, "NamesCapability") else mod.Names
    assert {"pet", "pet_by_names", "run_2", "class_def"} <= set(vars(cls))
    sig = inspect.signature(cls.pet_by_names)
    assert {
        "names",
        "int_",
        "str_",
        "list_",
        "timeout_",
        "build_input_",
        "self_",
        "route",
        "names_",
    } <= set(sig.parameters)
    assert pydantic.BaseModel in mod.Pet.__mro__
    caps = importlib.import_module("case_name_collisions").Capabilities(Recorder())
    assert caps.names == ("names",)
    assert isinstance(caps.names_, cls)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_constructs_fail_with_one_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document, expected = REFUSED[name]
    source = tmp_path / "doc.json"
    source.write_text(json.dumps(document))
    assert main(["generate", "--from", str(source), "--out", str(tmp_path / "pkg")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("livepeer-codegen: error: ")
    assert expected in err[0]
    assert "Traceback" not in err[0]


def test_warnings_name_ignored_keywords(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "doc.json"
    source.write_text(json.dumps(SUPPORTED["unknown_keywords"]))
    assert main(["generate", "--from", str(source), "--out", str(tmp_path / "pkg")]) == 0
    err = capsys.readouterr().err
    assert "properties/x/minimun: unknown keyword 'minimun' ignored" in err
    assert "properties/x/x-internal: vendor extension 'x-internal' ignored" in err


HOSTILE = {
    "openapi": "3.1.0",
    "info": {"title": "../../../../tmp/owned", "version": "1"},
    "x-livepeer-capability": "../../escape",
    "paths": {
        "/../../up": {
            "post": {
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/..~1..~1x"}}
                    }
                },
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/a/{..}": {
            "post": {
                "operationId": "../../../op",
                "parameters": [
                    {"name": "..", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/%2e%2e/abs": {
            "post": {
                "x-livepeer-operation": "/etc/passwd",
                "responses": {"200": {"description": "ok"}},
            }
        },
    },
    "components": {
        "schemas": {"../../x": {"type": "object", "properties": {"../y": {"type": "string"}}}}
    },
}


@pytest.mark.parametrize(
    "variant",
    ["as_given", "explicit_operation_names"],
)
def test_a_hostile_document_cannot_write_outside_out(
    variant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = json.loads(json.dumps(HOSTILE))
    if variant == "explicit_operation_names":
        for i, item in enumerate(document["paths"].values()):
            item["post"]["x-livepeer-capability"] = [
                "../../../evil",
                '/abs/"olute"; raise SystemExit #',
                "..\\win",
            ][i]
            item["post"]["description"] = 'ends in a quote" and """ and \\'
        document["components"]["schemas"]["../../x"]["description"] = '"""; raise SystemExit; """'
    cwd = tmp_path / "work" / "deep" / "cwd"
    cwd.mkdir(parents=True)
    source = tmp_path / "hostile.json"
    source.write_text(json.dumps(document))
    monkeypatch.chdir(cwd)
    assert main(["generate", "--from", str(source), "--out", "pkg"]) == 0
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - {source}
    outside = [p for p in written if not p.is_relative_to(cwd / "pkg")]
    assert outside == []
    assert not (cwd / ".ruff_cache").exists()
    assert not Path("/tmp/owned").exists()
    names = sorted(p.name for p in (cwd / "pkg").iterdir())
    assert all(n.isascii() and ".." not in n for n in names)
    sys.path.insert(0, str(cwd))
    try:
        pkg = importlib.import_module("pkg")
        for info in pkgutil.iter_modules(pkg.__path__):
            importlib.import_module(f"pkg.{info.name}")
    finally:
        sys.path.remove(str(cwd))
        for mod in [m for m in sys.modules if m.split(".")[0] == "pkg"]:
            del sys.modules[mod]


def test_non_ascii_names_transliterate(corpus: tuple[Path, dict[str, types.ModuleType]]) -> None:
    mod = importlib.import_module("case_non_ascii.buecher_cafe")
    rec = Recorder()
    wrapper = mod.BuecherCafe(rec)
    params = list(inspect.signature(wrapper.groesse).parameters)
    assert params == ["strasse", "cafe", "u540d_u524d", "naive_ssig", "timeout"]
    with contextlib.suppress(Recorded):
        wrapper.groesse(strasse="Haupt", cafe="c", u540d_u524d="n", naive_ssig=1)
    _, cap, sent = rec.calls[-1]
    assert cap == "buecher-cafe"
    assert sent["path"] == "größe/Haupt"  # the wire keeps the document's names
    assert sent["input"] == {"café": "c", "名前": "n", "naïve-ßig": 1}


def test_path_values_are_substituted_once() -> None:
    from livepeer.client._errors import InputValidationError
    from livepeer.client._typed import route_path

    assert route_path("c", "a/{x}/b/{y}", {"x": "{y}", "y": 2}) == "a/{y}/b/2"
    assert route_path("c", "f/{flag}", {"flag": True}) == "f/true"
    for bad in ("", ".", "..", "a/b", "100%", "a?b", "a#b", "a\nb"):
        with pytest.raises(InputValidationError, match="cannot be sent in the URL path"):
            route_path("c", "a/{x}", {"x": bad})
