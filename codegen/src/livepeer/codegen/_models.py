"""Pydantic models of one capability, rendered by datamodel-code-generator, and what the wrappers need to know
about them (field names, annotations, defaults), read back from the generated source with ``ast``."""

from __future__ import annotations

import ast
import copy
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any

from livepeer.codegen._document import Capability
from livepeer.codegen._errors import CodegenError
from livepeer.codegen._naming import class_name, field_names, method_name

__all__ = ["Field", "ModelInfo", "Models", "render_models"]

_SUPPORT = "_lp_support"  # placeholder module of FileInput/FileOutput, rewritten to "livepeer.client._typed"
_LIVE_RESERVED = frozenset({"model", "request_id", "stream_id", "params"})
_VALUE_CONSTRAINTS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)


@dataclass(frozen=True)
class Field:
    """One model field as the wrapper signature needs it."""

    name: str  # Python name
    prop: str  # schema property (wire name)
    annotation: str  # type without Annotated[...] metadata
    default: str | None  # Python source of the default, None when required
    description: str


@dataclass(frozen=True)
class ModelInfo:
    name: str
    root: str | None  # annotation of a RootModel's root, None for object models
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Models:
    code: str  # module body: imports + classes (no header)
    input: ModelInfo | None
    output: ModelInfo | None
    events: ModelInfo | None
    params: ModelInfo | None
    names: tuple[str, ...]  # every class defined, in source order
    roles: dict[
        str, ModelInfo
    ]  # every root: "input", "output", "events", "params", "path", "<i>:input"...
    cls: str  # the wrapper class name (never one of the models)


def _walk_refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _walk_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk_refs(value, found)


def _closure(roots: list[Any], defs: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo: set[str] = set()
    for root in roots:
        _walk_refs(root, todo)
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        _walk_refs(defs[name], todo)
    return seen


def _side(node: Any, *, output: bool, rename: dict[str, str]) -> Any:
    """Schema as the models of one side see it: files typed, output enums open, refs renamed."""
    if isinstance(node, list):
        return [_side(v, output=output, rename=rename) for v in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: _side(v, output=output, rename=rename) for k, v in node.items() if k != "x-livepeer-file"
    }
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        target = ref.rsplit("/", 1)[1]
        out["$ref"] = "#/$defs/" + rename.get(target, target)
    _one_side(node, out, output=output)
    is_file = node.get("format") == "binary" or (output and node.get("x-livepeer-file") is True)
    if is_file and node.get("type") in ("string", ["string", "null"]):
        out["customTypePath"] = f"{_SUPPORT}.{'FileOutput' if output else 'FileInput'}"
        out.pop("format", None)
    if output:
        # Results are checked for shape, not for value ranges: a server that widens a range must not
        # break clients generated earlier.
        for key in _VALUE_CONSTRAINTS:
            out.pop(key, None)
    if output and "enum" in out and "type" in out and out["type"] in ("string", "integer"):
        # Outputs accept values the schema did not list, so a newer server never breaks an older client.
        base = {k: v for k, v in out.items() if k not in ("enum", "default", "description")}
        extra = {k: out[k] for k in ("default", "description") if k in out}
        out = {"anyOf": [{**base, "enum": out["enum"]}, base], **extra}
    return out


# Formats whose pydantic types need an optional package (email-validator) or hide the value when serialized
# (SecretStr) or decode the value (Base64Str): they stay plain strings, sent as given.
_PLAIN_FORMATS = frozenset({"email", "idn-email", "password", "byte"})


def _one_side(node: dict[str, Any], out: dict[str, Any], *, output: bool) -> None:
    """readOnly properties are not inputs, writeOnly ones not outputs; defaults the type cannot hold go."""
    props = out.get("properties")
    if isinstance(props, dict):
        hidden = "writeOnly" if output else "readOnly"
        gone = [
            k
            for k, v in (node.get("properties") or {}).items()
            if isinstance(v, dict) and v.get(hidden) is True
        ]
        for key in gone:
            props.pop(key, None)
        if gone and isinstance(out.get("required"), list):
            out["required"] = [r for r in out["required"] if r not in gone]
    out.pop("readOnly", None)
    out.pop("writeOnly", None)
    for key in ("anyOf", "oneOf"):
        members = out.get(key)
        # A union of constrained primitives would become RootModel classes callers must build
        # (`V(root="x")`); plain `str | int` instead, and the server checks the ranges.
        if (
            isinstance(members, list)
            and all(_primitive(m) for m in members)
            and any(set(m) - {"type", "format"} for m in members)
        ):
            out[key] = [{k: v for k, v in m.items() if k in ("type", "format")} for m in members]
    if out.get("format") in _PLAIN_FORMATS:
        out.pop("format")
    if "default" in out:
        default = out["default"]
        kind = out.get("type")
        nullable = kind == "null" or (isinstance(kind, list) and "null" in kind)
        if isinstance(default, dict) or (
            isinstance(default, list) and any(isinstance(v, (dict, list)) for v in default)
        ):
            # An object default would be a dict where the model wants a class (mypy --strict fails); the
            # field becomes optional and, left out, takes the server's default.
            out.pop("default")
        elif default is None and not nullable and kind is not None:
            out.pop("default")


def _flatten(schema: Any, defs: dict[str, Any], depth: int = 0) -> Any:
    """A root model's ``allOf`` of objects merged into one object: its fields are the wrapper's arguments,
    so they must all be declared on the class itself (not inherited from several bases)."""
    if not isinstance(schema, dict) or "allOf" not in schema or depth > 8:
        return schema
    props: dict[str, Any] = {}
    required: list[str] = []
    rest = {k: v for k, v in schema.items() if k not in ("allOf", "properties", "required")}
    for member in schema["allOf"]:
        ref = member.get("$ref") if isinstance(member, dict) else None
        if isinstance(ref, str) and set(member) <= {"$ref", "description"}:
            member = defs.get(ref.rsplit("/", 1)[1], {})
        member = _flatten(member, defs, depth + 1)
        if not isinstance(member, dict) or not (
            member.get("type") in (None, "object") and set(member) <= _OBJECT_KEYS
        ):
            return schema  # not a plain object: leave the generator's rendering
        props.update(member.get("properties") or {})
        required += [r for r in member.get("required") or [] if r not in required]
    props.update(schema.get("properties") or {})
    required += [r for r in schema.get("required") or [] if r not in required]
    return {"type": "object", **rest, "properties": props, "required": required}


_OBJECT_KEYS = frozenset(
    {"type", "properties", "required", "additionalProperties", "description", "title", "allOf"}
)


def _primitive(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and node.get("type") in ("string", "integer", "number", "boolean", "null")
        and not set(node) & {"enum", "const", "$ref", "customTypePath"}
    )


def _has_properties(schema: dict[str, Any] | None, defs: dict[str, Any]) -> bool:
    """An object schema with declared properties (following one top-level $ref)."""
    if schema is None:
        return False
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        schema = defs.get(ref.rsplit("/", 1)[1], {})
    return bool(schema.get("properties"))


def _described(node: Any) -> str:
    return node.get("description", "") if isinstance(node, dict) else ""


def _aliases(
    model: str, schema: dict[str, Any], reserved: frozenset[str]
) -> tuple[dict[str, str], dict[str, str]]:
    props = schema.get("properties") or {}
    names = field_names(list(props), reserved)
    return names, {f"{model}.{prop}": name for prop, name in names.items() if prop != name}


def _strip_annotated(node: ast.expr) -> ast.expr:
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Annotated"
    ):
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return elts[0]
    return node


def _read_models(code: str) -> dict[str, tuple[str | None, list[tuple[str, str, str | None]]]]:
    """class name -> (root annotation or None, [(field, annotation, default source)])."""
    out: dict[str, tuple[str | None, list[tuple[str, str, str | None]]]] = {}
    for node in ast.parse(code).body:
        if not isinstance(node, ast.ClassDef):
            continue
        root: str | None = None
        fields: list[tuple[str, str, str | None]] = []
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                name = item.target.id
                ann = ast.unparse(_strip_annotated(item.annotation))
                default = ast.unparse(item.value) if item.value is not None else None
                if name == "root":
                    root = ann
                elif name != "model_config":
                    fields.append((name, ann, default))
        out[node.name] = (root, fields)
    return out


def _imported(code: str) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.parse(code).body:
        if isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def _field_set(code: str) -> frozenset[str]:
    return frozenset(
        item.target.id
        for node in ast.parse(code).body
        if isinstance(node, ast.ClassDef)
        for item in node.body
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
    )


def render_models(cap: Capability) -> Models:
    """Run datamodel-code-generator on one capability: ``render_models(load_capability(path)).code``."""
    base = class_name(cap.name)
    defs = copy.deepcopy(cap.definitions)
    taken = set(defs)

    def fresh(name: str) -> str:
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name}{n}", n + 1
        taken.add(candidate)
        return candidate

    in_sides: list[tuple[dict[str, Any] | None, ...]] = [
        (cap.input, cap.params, cap.path_parameters)
    ]
    in_sides += [(o.input, o.path_parameters) for o in cap.operations]
    out_sides = [(cap.output, cap.events)] + [(o.output, o.events) for o in cap.operations]
    in_roots = [s for group in in_sides for s in group if s is not None]
    out_roots = [s for group in out_sides for s in group if s is not None]
    in_defs = _closure(in_roots, defs)
    out_defs = _closure(out_roots, defs)
    # A definition both sides use, but which types differently as an output (files, open enums), gets an
    # output twin so the input side keeps strict validation.
    rename: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for name in sorted(in_defs & out_defs):
            if name in rename:
                continue
            if _side(defs[name], output=True, rename=rename) != _side(
                defs[name], output=False, rename={}
            ):
                rename[name] = fresh(name + "Output")
                changed = True
    jdefs: dict[str, Any] = {}
    for name in sorted(defs):
        if name in out_defs and name not in in_defs:
            jdefs[name] = _side(defs[name], output=True, rename=rename)
        elif name in in_defs or name not in out_defs:
            jdefs[name] = _side(defs[name], output=False, rename={})
        if name in rename:
            jdefs[rename[name]] = _side(defs[name], output=True, rename=rename)

    aliases: dict[str, str] = {}
    props_of: dict[str, dict[str, str]] = {}
    roles: dict[str, str] = {}

    cls = base if base not in defs else base + "Capability"
    taken.add(cls)

    def add_root(
        role: str, schema: dict[str, Any] | None, output: bool, suffix: str, prefix: str = base
    ) -> None:
        if schema is None:
            return
        side = _side(schema, output=output, rename=rename if output else {})
        ref = side.get("$ref") if isinstance(side, dict) else None
        if isinstance(ref, str) and set(side) <= {"$ref", "description", "title", "default"}:
            target = ref.rsplit("/", 1)[1]
            target_schema = jdefs.get(target, {})
            if target_schema.get("type") == "object" or "properties" in target_schema:
                roles[role] = target
                return
        name = fresh(prefix + suffix)
        if role.endswith(("input", "params", "path")):
            side = {"type": "object", **side}
        jdefs[name] = side
        roles[role] = name

    add_root("input", cap.input, False, "Input")
    add_root("params", cap.params if _has_properties(cap.params, defs) else None, False, "Params")
    add_root("output", cap.output if cap.output != {} else None, True, "Output")
    add_root("events", cap.events if cap.events != {} else None, True, "Event")
    add_root("path", cap.path_parameters, False, "Path")
    for i, op in enumerate(cap.operations):
        prefix = class_name(method_name(op.name))
        add_root(f"{i}:input", op.input, False, "Input", prefix)
        add_root(f"{i}:output", op.output if op.output != {} else None, True, "Output", prefix)
        add_root(f"{i}:events", op.events if op.events != {} else None, True, "Event", prefix)
        add_root(f"{i}:path", op.path_parameters, False, "Path", prefix)

    for model in sorted(set(roles.values())):
        jdefs[model] = _flatten(jdefs[model], jdefs)

    def name_fields(extra: frozenset[str]) -> None:
        aliases.clear()
        props_of.clear()
        # the module's own names: a wrapper argument must not shadow a class the method body uses
        module_names = frozenset(jdefs) | frozenset({cls}) | extra
        for role in sorted(roles, key=lambda r: (not r.endswith("path"), r)):
            if not role.endswith(("input", "params", "path")):
                continue
            model = roles[role]
            if model in props_of:
                continue
            reserved = module_names | (_LIVE_RESERVED if role == "params" else frozenset())
            if role.endswith("input"):
                path_model = roles.get(role.removesuffix("input") + "path")
                reserved |= frozenset(props_of.get(path_model or "", {}).values())
            names, scoped = _aliases(model, jdefs[model], reserved)
            props_of[model] = names
            aliases.update(scoped)
        for name, schema in jdefs.items():
            if name not in props_of and isinstance(schema, dict) and schema.get("properties"):
                names, scoped = _aliases(name, schema, extra)
                props_of[name] = names
                aliases.update(scoped)

    from datamodel_code_generator import generate

    # Options by their string values (the generator validates them); see docs/codegen.md for why each.
    options: dict[str, Any] = {
        "input_file_type": "jsonschema",
        "output_model_type": "pydantic_v2.BaseModel",
        "target_python_version": "3.10",
        "disable_timestamp": True,
        "extra_fields": "allow",
        "use_annotated": True,
        "field_constraints": True,
        "use_standard_collections": True,
        "use_union_operator": True,
        "use_double_quotes": True,
        "strict_nullable": True,
        "enum_field_as_literal": "all",
        "allow_population_by_field_name": True,
        "use_field_description": False,
        "keep_model_order": True,
        "collapse_root_models": True,
        "formatters": [],
    }
    source = json.dumps({"$defs": jdefs}, sort_keys=False)
    extra: frozenset[str] = frozenset()
    code = ""
    for _attempt in range(3):
        name_fields(extra)
        options["aliases"] = aliases
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                generated = generate(source, **options)
        # the generator raises many unrelated types; the schema file is what to fix
        except Exception as exc:
            message = " ".join(str(exc).split())[:300]
            raise CodegenError(
                f"{cap.file}#/", f"datamodel-code-generator failed: {message}"
            ) from None
        if not isinstance(generated, str):
            raise CodegenError(cap.file, "datamodel-code-generator produced several modules")
        code = generated
        clash = _imported(code) & _field_set(code)
        if not clash - extra:
            break
        # a field named like a type the module imports (`date: date`) would shadow it in the class body
        extra |= clash
    lines = code.splitlines()
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    body = "\n".join(lines) + "\n"
    body = body.replace(f"from {_SUPPORT} import", "from livepeer.client._typed import")
    # Schemas are built on a model's first use, not when its module is imported: a call builds the models it
    # validates (a nested model inside its parent's schema), never the module's others; and a model that
    # names a later one is not first tried and failed at class creation. docs/codegen.md "Cold path".
    body = body.replace(
        "model_config = ConfigDict(", "model_config = ConfigDict(\n        defer_build=True,"
    )
    # The empty root of a $defs-only document is not part of our API.
    body = re.sub(r"\n\nclass Model\(RootModel\[Any\]\):\n    root: Any\n", "\n", body)
    parsed = _read_models(body)

    def info(role: str) -> ModelInfo | None:
        model = roles.get(role)
        if model is None:
            return None
        if model not in parsed:
            raise CodegenError(
                f"{cap.file}#/{role}", f"the generator did not produce class {model!r}"
            )
        root, fields = parsed[model]
        schema = jdefs[model]
        props = schema.get("properties") or {}
        names = props_of.get(model, {})
        by_name = {py: prop for prop, py in names.items()}
        out: list[Field] = []
        for fname, ann, default in fields:
            prop = by_name.get(fname)
            if prop is None:
                raise CodegenError(
                    f"{cap.file}#/{role}", f"unexpected field {fname!r} in generated class {model}"
                )
            out.append(Field(fname, prop, ann, default, _described(props.get(prop))))
        if root is None and len(out) != len(props):
            raise CodegenError(f"{cap.file}#/{role}", f"class {model} lost properties")
        return ModelInfo(model, root, tuple(out))

    all_roles = {role: info(role) for role in roles}
    return Models(
        code=body,
        input=all_roles.get("input"),
        output=all_roles.get("output"),
        events=all_roles.get("events"),
        params=all_roles.get("params"),
        names=tuple(parsed),
        roles={k: v for k, v in all_roles.items() if v is not None},
        cls=cls,
    )
