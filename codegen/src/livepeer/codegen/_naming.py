"""Python names and file names for capabilities, operations, classes and fields (deterministic, collision-free).

Every name taken from a document goes through here before it touches Python or the filesystem: non-ASCII
letters are transliterated (``Größe`` -> ``Groesse``, ``café`` -> ``cafe``; letters without an ASCII form
become ``u540d``), keywords, builtins and the wrappers' own names get a trailing ``_``.
"""

from __future__ import annotations

import keyword
import re
import unicodedata

__all__ = [
    "BUILTINS",
    "ascii_words",
    "class_name",
    "field_names",
    "file_stem",
    "method_name",
    "module_name",
    "pointer",
    "slug",
    "to_ascii",
]

# Names a field may not take on a pydantic model (BaseModel attributes) or in a wrapper signature.
_RESERVED = frozenset(
    {
        "copy", "dict", "json", "schema", "construct", "validate", "fields", "parse_obj",
        "parse_raw", "parse_file", "from_orm", "update_forward_refs", "schema_json",
        "model_config", "model_fields", "model_dump", "model_validate", "model_copy",
        "model_extra", "model_construct", "model_json_schema", "self", "cls", "timeout",
    }
)  # fmt: skip
# A field named like a builtin type or a typing name shadows it inside the class body, where pydantic resolves
# the annotations of the fields after it (`str: str | None = None` then `name: str` breaks).
BUILTINS = frozenset(
    {
        "str", "int", "float", "bool", "bytes", "bytearray", "list", "dict", "set", "frozenset",
        "tuple", "object", "type", "complex", "memoryview", "range", "None", "True", "False",
        "Ellipsis", "NotImplemented", "Exception", "BaseException",
        "Annotated", "Any", "AnyUrl", "AwareDatetime", "BaseModel", "ConfigDict", "Field", "Literal",
        "RootModel", "Path", "ClassVar", "TYPE_CHECKING", "Mapping", "Optional", "Union", "annotations",
        "FileInput", "FileOutput", "Gateway", "LiveSession",
        "EventStream", "AsyncEventStream", "Call", "TypedCapability", "IO",
        "build_input", "parse_output", "route_path",
    }
)  # fmt: skip
_TRANSLIT = {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE", "ð": "d"}
_TRANSLIT.update({"þ": "th", "Þ": "Th", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i"})


def to_ascii(text: str) -> str:
    """``Größe`` -> ``Groesse``-like ASCII: accents dropped, a few letters spelled out, others as ``uXXXX``."""
    out = []
    for ch in str(text):
        if ch.isascii():
            out.append(ch)
            continue
        if ch in _TRANSLIT:
            out.append(_TRANSLIT[ch])
            continue
        if ch in "äöüÄÖÜ":
            # German umlauts read as ae/oe/ue, not a/o/u
            out.append(unicodedata.normalize("NFKD", ch)[0] + "e")
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        if base and base.isascii():
            out.append(base)
        elif ch.isalnum():
            out.append(f" u{ord(ch):04x} ")
        else:
            out.append(" ")
    return "".join(out)


def ascii_words(text: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", to_ascii(text))
    return [w for w in re.split(r"[^0-9A-Za-z]+", spaced) if w]


_words = ascii_words


def slug(text: str) -> str:
    """``"My Feature Zoo!"`` -> ``"my-feature-zoo"`` (a capability name from a title)."""
    return "-".join(w.lower() for w in _words(text))


def module_name(capability: str) -> str:
    """``"text-to-image"`` -> ``"text_to_image"`` (a valid, non-keyword module name)."""
    name = "_".join(w.lower() for w in _words(capability)) or "capability"
    if name[0].isdigit():
        name = "cap_" + name
    # `names` is the Capabilities index's own attribute; `capabilities` the runtime's package name
    if keyword.iskeyword(name) or name.startswith("_") or name in ("names", "capabilities"):
        name += "_"
    return name


def method_name(operation: str) -> str:
    """``"addPet"`` -> ``"add_pet"``; never a keyword, builtin or dunder."""
    name = "_".join(w.lower() for w in _words(operation)) or "call"
    if name[0].isdigit():
        name = "op_" + name
    if keyword.iskeyword(name) or name in BUILTINS or name in _RESERVED:
        name += "_"
    return name


def file_stem(name: str) -> str:
    """A file name stem that stays in its directory: ``"text-to-image"`` as is, ``"../x"`` -> ``"x"``."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}", name):
        return name
    return "-".join(w.lower() for w in _words(name))[:100].strip("-") or "capability"


def class_name(capability: str) -> str:
    """``"text-to-image"`` -> ``"TextToImage"``; ``"llm"`` -> ``"Llm"``."""
    name = "".join(w[:1].upper() + w[1:] for w in _words(capability)) or "Capability"
    if name[0].isdigit():
        name = "Cap" + name
    if keyword.iskeyword(name) or name in BUILTINS:
        name += "Model"
    return name


def _field_name(prop: str, reserved: frozenset[str]) -> str:
    if prop.isascii() and prop.isidentifier() and not prop.startswith("_"):
        base = prop
    else:
        base = "_".join(_words(prop)) if not prop.isascii() else re.sub(r"\W+", "_", prop)
        base = base.strip("_") or "field"
        if base[0].isdigit():
            base = "field_" + base
    if keyword.iskeyword(base) or base in _RESERVED or base in BUILTINS or base in reserved:
        base += "_"
    return base


def field_names(props: list[str], reserved: frozenset[str] = frozenset()) -> dict[str, str]:
    """Schema property -> Python field name, unique within one object.

    ``reserved`` adds names a wrapper signature or module already uses (e.g. ``model`` for ``live``).
    """
    out: dict[str, str] = {}
    used: set[str] = set()
    for prop in props:
        name = _field_name(prop, reserved)
        candidate, n = name, 2
        while candidate in used or candidate in reserved:
            candidate, n = f"{name}_{n}", n + 1
        used.add(candidate)
        out[prop] = candidate
    return out


def pointer(*parts: str | int) -> str:
    """A JSON pointer from parts, escaped (``~0``, ``~1``)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
