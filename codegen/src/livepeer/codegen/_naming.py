"""Python names for capabilities, classes and fields (deterministic, collision-free)."""

from __future__ import annotations

import keyword
import re

__all__ = ["class_name", "field_names", "module_name", "pointer"]

# Names a field may not take on a pydantic model (BaseModel attributes) or in a wrapper signature.
_RESERVED = frozenset(
    {
        "copy", "dict", "json", "schema", "construct", "validate", "fields", "parse_obj",
        "parse_raw", "parse_file", "from_orm", "update_forward_refs", "schema_json",
        "model_config", "model_fields", "model_dump", "model_validate", "model_copy",
        "model_extra", "model_construct", "model_json_schema", "self", "cls", "timeout",
    }
)  # fmt: skip


def _words(text: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return [w for w in re.split(r"[^0-9A-Za-z]+", spaced) if w]


def module_name(capability: str) -> str:
    """``"text-to-image"`` -> ``"text_to_image"`` (a valid, non-keyword module name)."""
    name = "_".join(w.lower() for w in _words(capability)) or "capability"
    if name[0].isdigit():
        name = "cap_" + name
    if keyword.iskeyword(name) or name.startswith("_"):
        name += "_"
    return name


def class_name(capability: str) -> str:
    """``"text-to-image"`` -> ``"TextToImage"``; ``"llm"`` -> ``"Llm"``."""
    name = "".join(w[:1].upper() + w[1:] for w in _words(capability)) or "Capability"
    if name[0].isdigit():
        name = "Cap" + name
    return name


def _field_name(prop: str, reserved: frozenset[str]) -> str:
    if prop.isidentifier() and not keyword.iskeyword(prop) and not prop.startswith("_"):
        base = prop
    else:
        base = re.sub(r"\W+", "_", prop).strip("_") or "field"
        if base[0].isdigit():
            base = "field_" + base
    if keyword.iskeyword(base) or base in _RESERVED or base in reserved:
        base += "_"
    return base


def field_names(props: list[str], reserved: frozenset[str] = frozenset()) -> dict[str, str]:
    """Schema property -> Python field name, unique within one object.

    ``reserved`` adds names a wrapper signature already uses (e.g. ``model`` for ``live``).
    """
    out: dict[str, str] = {}
    used: set[str] = set()
    for prop in props:
        name = _field_name(prop, reserved)
        candidate, n = name, 2
        while candidate in used:
            candidate, n = f"{name}_{n}", n + 1
        used.add(candidate)
        out[prop] = candidate
    return out


def pointer(*parts: str | int) -> str:
    """A JSON pointer from parts, escaped (``~0``, ``~1``)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
