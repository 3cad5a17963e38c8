"""The public API surface of a package, as stable text for the syrupy snapshot."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from types import ModuleType
from typing import Any

import pytest

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _public_modules(package: str) -> list[ModuleType]:
    root = importlib.import_module(package)
    mods = [root]
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        mods.append(importlib.import_module(info.name))
    return sorted(mods, key=lambda m: m.__name__)


def _names(module: ModuleType) -> list[str]:
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return sorted(declared)
    return sorted(
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and getattr(v, "__module__", module.__name__) == module.__name__
        and not inspect.ismodule(v)
    )


def _sig(obj: Any) -> str:
    try:
        return _ADDRESS.sub("", str(inspect.signature(obj)))
    except (TypeError, ValueError):
        return "(...)"


def _class_lines(cls: type) -> list[str]:
    lines = []
    bases = ", ".join(b.__qualname__ for b in cls.__bases__ if b is not object)
    if hasattr(cls, "model_fields") and hasattr(cls, "model_config"):
        # pydantic models: fields as written (their signature depends on when forward refs resolve)
        lines.append(f"  model {cls.__qualname__}({bases})")
        for name, ann in inspect.get_annotations(cls).items():
            if name != "model_config":
                lines.append(f"    {name}: {ann}")
        return lines
    lines.append(f"  class {cls.__qualname__}({bases}){_sig(cls)}")
    for name, member in sorted(vars(cls).items()):
        if name.startswith("_") and name not in (
            "__call__",
            "__enter__",
            "__aenter__",
            "__iter__",
            "__aiter__",
            "__getitem__",
        ):
            continue
        if isinstance(member, property):
            ann = inspect.signature(member.fget).return_annotation if member.fget else "?"
            lines.append(f"    property {name}: {ann}")
        elif isinstance(member, (staticmethod, classmethod)):
            lines.append(f"    {type(member).__name__} {name}{_sig(member.__func__)}")
        elif inspect.isfunction(member):
            prefix = "async def" if inspect.iscoroutinefunction(member) else "def"
            lines.append(f"    {prefix} {name}{_sig(member)}")
        elif not callable(member):
            ann = inspect.get_annotations(cls).get(name, type(member).__name__)
            lines.append(f"    {name}: {ann}")
    return lines


def surface(package: str) -> str:
    out: list[str] = []
    for module in _public_modules(package):
        out.append(f"module {module.__name__}")
        for name in _names(module):
            obj = getattr(module, name, None)
            if inspect.isclass(obj):
                out.extend(_class_lines(obj))
            elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
                prefix = "async def" if inspect.iscoroutinefunction(obj) else "def"
                out.append(f"  {prefix} {name}{_sig(obj)}")
            else:
                out.append(f"  {name}: {type(obj).__name__}")
    return _ADDRESS.sub("", "\n".join(out)) + "\n"


@pytest.fixture
def api_surface() -> Any:
    return surface
