"""Python names for schema names, and the command line entry points."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from livepeer.codegen import CodegenError, main
from livepeer.codegen._naming import (
    class_name,
    field_names,
    file_stem,
    method_name,
    module_name,
    pointer,
    slug,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize(
    ("capability", "module", "cls"),
    [
        ("text-to-image", "text_to_image", "TextToImage"),
        ("llm", "llm", "Llm"),
        ("segment-anything-2", "segment_anything_2", "SegmentAnything2"),
        ("3d-mesh", "cap_3d_mesh", "Cap3dMesh"),
        ("import", "import_", "Import"),
        ("camelCase.name", "camel_case_name", "CamelCaseName"),
    ],
)
def test_module_and_class_names(capability: str, module: str, cls: str) -> None:
    assert module_name(capability) == module
    assert module_name(capability).isidentifier()
    assert class_name(capability) == cls


def test_field_names_are_identifiers_unique_and_avoid_reserved_names() -> None:
    props = [
        "class",
        "my-field",
        "my_field",
        "2fast",
        "json",
        "timeout",
        "model_dump",
        "ok",
        "_private",
    ]
    names = field_names(props)
    assert names["class"] == "class_"
    assert names["my-field"] == "my_field"
    assert names["my_field"] == "my_field_2"
    assert names["2fast"] == "field_2fast"
    assert names["json"] == "json_"
    assert names["timeout"] == "timeout_"
    assert names["model_dump"] == "model_dump_"
    assert names["ok"] == "ok"
    assert names["_private"] == "private"
    assert len(set(names.values())) == len(props)
    assert field_names(["model"], frozenset({"model"})) == {"model": "model_"}


def test_pointer_escapes() -> None:
    assert pointer("paths", "/a~b", "post") == "/paths/~1a~0b/post"


def test_livepeer_generate_argument_forms(tmp_path: Path) -> None:
    """`livepeer generate` passes its arguments without the command, in any order."""
    source = str(FIXTURES / "openapi31.json")
    assert main(["--out", str(tmp_path / "pkg_a"), "--from", source]) == 0
    assert main(["generate", "--from", source, "--out", str(tmp_path / "pkg_b")]) == 0
    assert (tmp_path / "pkg_a" / "shapes.py").read_bytes() != b""
    a = (tmp_path / "pkg_a" / "shapes.py").read_text().splitlines()[2:]
    b = (tmp_path / "pkg_b" / "shapes.py").read_text().splitlines()[2:]
    assert a == b  # only the header's regenerate hint names the package


def test_generated_package_is_importable_under_any_name(tmp_path: Path) -> None:
    assert (
        main(["--from", str(FIXTURES / "openapi31.json"), "--out", str(tmp_path / "geometry")]) == 0
    )
    sys.path.insert(0, str(tmp_path))
    try:
        pkg = importlib.import_module("geometry")
        assert pkg.Capabilities.names == ("shapes",)
        assert importlib.import_module("geometry.shapes").Shapes.name == "shapes"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] == "geometry"]:
            del sys.modules[name]


def test_output_directory_must_be_a_package_name(tmp_path: Path) -> None:
    from livepeer.codegen import generate

    with pytest.raises(CodegenError, match="package name"):
        generate(str(FIXTURES / "openapi31.json"), tmp_path / "not-a-package")


def test_render_outside_a_repository_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["render"]) == 2
    assert "no schemas directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("text-to-image", "text-to-image"),
        ("../../etc/passwd", "etc-passwd"),
        ("/abs/olute", "abs-olute"),
        ("..", "capability"),
        ("a\\b", "a-b"),
        ("Größe", "groesse"),
    ],
)
def test_file_stems_stay_in_their_directory(name: str, stem: str) -> None:
    assert file_stem(name) == stem
    assert "/" not in file_stem(name)
    assert ".." not in file_stem(name)


def test_names_transliterate_and_avoid_builtins() -> None:
    assert slug("Bücher Café") == "buecher-cafe"
    assert module_name("名前") == "u540d_u524d"
    assert module_name("names") == "names_"
    assert method_name("addPet") == "add_pet"
    assert method_name("list") == "list_"
    assert method_name("class") == "class_"
    assert class_name("none") == "NoneModel"
    assert field_names(["str", "int", "Field", "naïve"]) == {
        "str": "str_",
        "int": "int_",
        "Field": "Field_",
        "naïve": "naive",
    }
