"""Fixtures of the codegen tests: a recording fake Gateway and a generated package of the feature fixture."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass
class Event:
    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class FakeStream:
    """Stands in for livepeer.client.StreamResponse: iterable of events and a context manager."""

    def __init__(self, events: list[str]) -> None:
        self._events = events
        self.entered = False
        self.closed = False

    def __iter__(self) -> Iterator[Event]:
        for data in self._events:
            yield Event(data)

    def __enter__(self) -> FakeStream:
        self.entered = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> FakeStream:
        self.entered = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True

    def __aiter__(self) -> Any:
        async def gen() -> Any:
            for data in self._events:
                yield Event(data)

        return gen()


@dataclass
class FakeGateway:
    """Records every verb call (the generated code's only contact with the runtime) and answers canned data."""

    result: object = None
    events: list[str] = field(default_factory=list)
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def run(self, capability: str, **kwargs: Any) -> object:
        self.calls.append(("run", capability, kwargs))
        return self.result

    async def run_async(self, capability: str, **kwargs: Any) -> object:
        self.calls.append(("run_async", capability, kwargs))
        return self.result

    def stream(self, capability: str, **kwargs: Any) -> FakeStream:
        self.calls.append(("stream", capability, kwargs))
        return FakeStream(self.events)

    def stream_async(self, capability: str, **kwargs: Any) -> FakeStream:
        self.calls.append(("stream_async", capability, kwargs))
        return FakeStream(self.events)

    def live(self, capability: str, **kwargs: Any) -> tuple[str, Mapping[str, Any]]:
        self.calls.append(("live", capability, kwargs))
        return ("session", kwargs)


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


def _generated(factory: pytest.TempPathFactory, fixture: str, name: str) -> Iterator[ModuleType]:
    from livepeer.codegen.cli import generate

    base = factory.mktemp(name)
    generate(str(FIXTURES / fixture), base / name)
    sys.path.insert(0, str(base))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(base))
        for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[mod]


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package `livepeer generate` writes for fixtures/features.openapi.yaml (OpenAPI 3.0), imported."""
    yield from _generated(tmp_path_factory, "features.openapi.yaml", "zoo")


@pytest.fixture(scope="session")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package for fixtures/openapi31.json (OpenAPI 3.1: discriminator, const, type lists), imported."""
    yield from _generated(tmp_path_factory, "openapi31.json", "shapes")
