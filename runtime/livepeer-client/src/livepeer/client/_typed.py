"""Runtime of the generated typed wrappers (``livepeer.capabilities`` and packages ``livepeer generate`` writes).

A generated wrapper holds data only: its models, its method signatures, a :class:`Call` per input schema (class
attributes) and one call per method into :class:`TypedCapability` (``return self._run({...}, Out, timeout=t)``).
Everything with behaviour lives here, hand-written and tested once: input validation before any I/O, the
``model=`` / ``model_id=`` alias, routing on the model field, path templates, output parsing, typed event
streams, the untyped ``Capability`` handle and the lazy ``Capabilities`` index. Its errors are
``livepeer.client._errors``' (one ``LivepeerError`` tree).

Dependency direction (docs/decisions.md D-arch-codegen): generated code imports this module; nothing in
``livepeer.client`` imports it, nor ``livepeer.capabilities``, at import time (``Gateway.capabilities`` imports
the generated index on first use). It imports pydantic, which ``import livepeer.client`` must not pay for.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Annotated, Any, ClassVar, Generic, TypeVar, cast, overload

from pydantic import BaseModel, PlainValidator
from pydantic import ValidationError as _PydanticError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from ._errors import InputValidationError, OutputValidationError

if TYPE_CHECKING:
    from typing import TypeAlias

    from pydantic import RootModel
    from typing_extensions import Self

    from ._files import FileOutput
    from ._gateway import Gateway
    from ._live import LiveSession
    from ._sse import StreamEvent
    from ._streaming import AsyncStreamResponse, StreamResponse

    FileInput: TypeAlias = Path | bytes | IO[bytes]
else:
    # Kept as the object the runtime returns (livepeer.client.FileOutput); see docs/codegen.md.
    FileOutput = Any

    def _file_input(value: object) -> object:
        if isinstance(value, (Path, bytes, bytearray)) or (
            hasattr(value, "read") and not isinstance(value, (str, Mapping))
        ):
            return value
        raise ValueError(
            "expected a file: pathlib.Path, bytes or a binary file object (str is not a path)"
        )

    FileInput = Annotated[Any, PlainValidator(_file_input)]

__all__ = [
    "AsyncEventStream",
    "Call",
    "Capability",
    "CapabilityIndex",
    "EventStream",
    "FileInput",
    "FileOutput",
    "TypedCapability",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
W = TypeVar("W", bound="TypedCapability")


@dataclass(frozen=True)
class Call:
    """What one input schema of a capability sends: the generated class's data, read by :class:`TypedCapability`.

    ``input``: the model that validates the keyword arguments (by their Python names). ``omit_if_none``: fields
    left out of the request when ``None``. ``model_field``: the wire name of the field whose non-empty value is
    passed to the runtime as ``model=`` (it routes the call). ``model_alias``: that field's Python name when the
    verbs spell it ``model=`` and accept the field's own name as an alias; ``model_default`` is sent when
    neither is given. ``switch``: the field ``stream`` sets to ``True`` and ``run`` to ``False``. ``path``: the
    worker route (``None``: the capability's own), with ``{name}`` placeholders filled from ``path_input``.
    """

    input: type[BaseModel]
    omit_if_none: frozenset[str] = frozenset()
    model_field: str = ""
    model_alias: str = ""
    model_default: object = None
    switch: str = ""
    path: str | None = None
    path_input: type[BaseModel] | None = None


def _field_names(model: type[BaseModel]) -> dict[str, str]:
    return {(info.alias or name): name for name, info in model.model_fields.items()}


def build_input(
    capability: str,
    model: type[BaseModel],
    values: Mapping[str, object],
    omit_if_none: frozenset[str],
) -> dict[str, object]:
    """Validate keyword arguments and return the wire payload (aliases, files kept as given)."""
    given = {k: v for k, v in values.items() if not (v is None and k in omit_if_none)}
    try:
        instance = model.model_validate(given)
    except _PydanticError as exc:
        errors = [dict(e) for e in exc.errors(include_url=False)]
        raise InputValidationError(capability, errors, _field_names(model)) from None
    payload = instance.model_dump(mode="python", by_alias=True, exclude_unset=True)
    for name, info in model.model_fields.items():
        value = getattr(instance, name, None)
        key = info.alias or name
        # pydantic serializes file objects as iterators of lines; the runtime needs the object itself
        if key in payload and (_is_file(value) or _is_file_list(value)):
            payload[key] = value
    try:
        return {key: _wire(value) for key, value in payload.items()}
    except (PydanticSerializationError, ValueError) as exc:
        error = {"loc": ("input",), "msg": f"cannot be sent as JSON: {exc}"}
        raise InputValidationError(capability, [error], {}) from None


def pick_alias(
    capability: str, name: str, value: T | None, alias: str, alias_value: T | None, default: T
) -> T:
    """One value of a keyword that has an alias (``model`` / ``model_id``); ``default`` when neither is
    given. Both given with different values is refused before any I/O: silently picking one would send
    a model the caller did not mean."""
    if value is not None and alias_value is not None and value != alias_value:
        error = {
            "loc": (name,),
            "msg": f"conflicts with its alias {alias}={alias_value!r}; pass one of them",
            "input": value,
        }
        raise InputValidationError(capability, [error], {})
    if value is not None:
        return value
    return alias_value if alias_value is not None else default


def _is_file(value: object) -> bool:
    return isinstance(value, (Path, bytes, bytearray, memoryview)) or (
        hasattr(value, "read") and not isinstance(value, (str, Mapping))
    )


def _is_file_list(value: object) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(_is_file(v) for v in value)


def _wire(value: object) -> object:
    """Files as given; everything else as JSON values (UUID, datetime, URL, IP address, duration -> str)."""
    if _is_file(value):
        return value
    if isinstance(value, Mapping):
        return {str(k): _wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire(v) for v in value]
    return to_jsonable_python(value)


# go-livepeer decodes the path after /process/request/ and parses the worker URL from it again
# (byoc/job_orchestrator.go:255-266): "/", "%", "?", "#" and "."/".." in a value would change the route.
_UNROUTABLE = frozenset("/%?#")


def route_path(capability: str, template: str, values: Mapping[str, object]) -> str:
    """``route_path("pets", "pets/{pet_id}", {"pet_id": 7})`` -> ``"pets/7"``; refuses values that cannot route."""
    texts: dict[str, str] = {}
    for key, value in values.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(_wire(value))
        if (
            not text
            or text in (".", "..")
            or any(c in _UNROUTABLE or ord(c) < 32 or c == "\x7f" for c in text)
        ):
            error = {
                "loc": (key,),
                "msg": "cannot be sent in the URL path (empty, '.', '..', or contains '/', '%', '?', '#' or a control character)",
                "input": value,
            }
            raise InputValidationError(capability, [error], {})
        texts[key] = text
    # one pass, so a value that looks like "{other}" is never substituted again
    return re.sub(r"\{([^{}/]+)\}", lambda m: texts.get(m.group(1), m.group(0)), template)


def parse_output(capability: str, model: type[M], value: object) -> M:
    """The runtime's decoded result as the capability's output model."""
    try:
        return model.model_validate(value)
    except _PydanticError as exc:
        raise OutputValidationError(
            capability, [dict(e) for e in exc.errors(include_url=False)], value
        ) from None


def event_data(data: str) -> object:
    """One SSE ``data`` field: JSON when it parses, else the text itself."""
    try:
        decoded: object = json.loads(data)
    except ValueError:
        return data
    return decoded


def _decoder(capability: str, output: type[BaseModel] | None) -> Callable[[object], Any]:
    """Result (or event) value -> what the method returns: the model, a root model's ``.root``, or as is."""
    if output is None:
        return lambda value: value
    # pydantic's own flag, not issubclass(RootModel): importing pydantic.root_model builds a model class,
    # which the first call of a capability without root models would pay for.
    if output.__pydantic_root_model__:
        return lambda value: cast("RootModel[Any]", parse_output(capability, output, value)).root
    return lambda value: parse_output(capability, output, value)


class EventStream(Generic[T]):
    """Typed events of a ``stream`` call; iterable and a context manager.

    ``with gw.capabilities.llm.stream(messages=[...]) as events: for chunk in events: ...``
    The underlying ``livepeer.client.StreamResponse`` (balance, request id) is ``.response``.
    """

    def __init__(self, response: StreamResponse, decode: Callable[[object], T]) -> None:
        self.response = response
        self._decode = decode
        self._events: Iterator[StreamEvent] | None = None

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        # One underlying iterator, so a partly consumed stream resumes where it stopped.
        if self._events is None:
            self._events = iter(self.response)
        return self._decode(event_data(next(self._events).data))

    def __enter__(self) -> Self:
        self.response.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.response.__exit__(exc_type, exc, tb)

    def close(self) -> None:
        self.response.close()


class AsyncEventStream(Generic[T]):
    """Async twin of :class:`EventStream`: ``async with ... as events: async for chunk in events: ...``."""

    def __init__(self, response: AsyncStreamResponse, decode: Callable[[object], T]) -> None:
        self.response = response
        self._decode = decode
        self._events: AsyncIterator[StreamEvent] | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        if self._events is None:
            self._events = self.response.__aiter__()
        event = await self._events.__anext__()
        return self._decode(event_data(event.data))

    async def __aenter__(self) -> Self:
        await self.response.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.response.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        await self.response.aclose()


@dataclass(frozen=True)
class _Request:
    input: dict[str, object]
    model: str | None
    path: str | None

    def options(self, timeout: float | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"input": self.input, "model": self.model, "timeout": timeout}
        if self.path is not None:
            kwargs["path"] = self.path
        return kwargs


class TypedCapability:
    """Base of every generated wrapper class: the behaviour behind its typed signatures.

    A subclass sets ``name`` and, for ``run``/``stream``, ``_call`` (its input schema); ``_live_params`` when
    ``live`` takes typed parameters. Each of its methods makes one call: ``self._run``, ``_run_async``,
    ``_stream``, ``_stream_async`` or ``_live`` with the keyword arguments by Python name and the output model
    (``None`` for a result kept as decoded; a root model returns its ``.root``).
    """

    name: ClassVar[str]
    _call: ClassVar[Call | None] = None
    _live_params: ClassVar[Call | None] = None

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def __repr__(self) -> str:
        return f"<{type(self).__name__} capability {self.name!r}>"

    def _request(
        self, call: Call | None, values: Mapping[str, object], streaming: bool
    ) -> _Request:
        spec = call if call is not None else self._call
        if spec is None:  # the generator never emits a verb without an input schema
            raise TypeError(f"{type(self).__name__} has no input schema")
        given = dict(values)
        if spec.model_alias:
            # `model=` is the verbs' spelling; the wire field's own name stays accepted (D-model-1).
            given[spec.model_alias] = pick_alias(
                self.name,
                "model",
                given.pop("model", None),
                spec.model_alias,
                given.pop(spec.model_alias, None),
                spec.model_default,
            )
        if spec.switch:
            given[spec.switch] = streaming
        path = spec.path
        if spec.path_input is not None and path is not None:
            fields = spec.path_input.model_fields
            route = {k: given.pop(k) for k in list(given) if k in fields}
            path = route_path(
                self.name, path, build_input(self.name, spec.path_input, route, frozenset())
            )
        payload = build_input(self.name, spec.input, given, spec.omit_if_none)
        routed = payload.get(spec.model_field) if spec.model_field else None
        # An empty model id lets the network pick; the runtime routes on a non-empty one.
        model = routed if isinstance(routed, str) and routed else None
        return _Request(payload, model, path)

    @overload
    def _run(  # type: ignore[overload-overlap]  # a root model returns its .root, before the BaseModel case
        self,
        values: Mapping[str, object],
        output: type[RootModel[T]],
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> T: ...
    @overload
    def _run(
        self,
        values: Mapping[str, object],
        output: type[M],
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> M: ...
    @overload
    def _run(
        self,
        values: Mapping[str, object],
        output: None,
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> object: ...
    def _run(
        self,
        values: Mapping[str, object],
        output: type[BaseModel] | None,
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> object:
        request = self._request(call, values, streaming=False)
        result = self._gateway.run(self.name, **request.options(timeout))
        return _decoder(self.name, output)(result)

    @overload
    async def _run_async(  # type: ignore[overload-overlap]
        self,
        values: Mapping[str, object],
        output: type[RootModel[T]],
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> T: ...
    @overload
    async def _run_async(
        self,
        values: Mapping[str, object],
        output: type[M],
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> M: ...
    @overload
    async def _run_async(
        self,
        values: Mapping[str, object],
        output: None,
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> object: ...
    async def _run_async(
        self,
        values: Mapping[str, object],
        output: type[BaseModel] | None,
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> object:
        request = self._request(call, values, streaming=False)
        result = await self._gateway.run_async(self.name, **request.options(timeout))
        return _decoder(self.name, output)(result)

    @overload
    def _stream(  # type: ignore[overload-overlap]
        self,
        values: Mapping[str, object],
        events: type[RootModel[T]],
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> EventStream[T]: ...
    @overload
    def _stream(
        self,
        values: Mapping[str, object],
        events: type[M],
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> EventStream[M]: ...
    @overload
    def _stream(
        self,
        values: Mapping[str, object],
        events: None,
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> EventStream[object]: ...
    def _stream(
        self,
        values: Mapping[str, object],
        events: type[BaseModel] | None,
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> EventStream[Any]:
        request = self._request(call, values, streaming=True)
        response = self._gateway.stream(self.name, **request.options(timeout))
        return EventStream(response, _decoder(self.name, events))

    @overload
    def _stream_async(  # type: ignore[overload-overlap]
        self,
        values: Mapping[str, object],
        events: type[RootModel[T]],
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> AsyncEventStream[T]: ...
    @overload
    def _stream_async(
        self,
        values: Mapping[str, object],
        events: type[M],
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> AsyncEventStream[M]: ...
    @overload
    def _stream_async(
        self,
        values: Mapping[str, object],
        events: None,
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> AsyncEventStream[object]: ...
    def _stream_async(
        self,
        values: Mapping[str, object],
        events: type[BaseModel] | None,
        *,
        timeout: float | None,
        call: Call | None = None,
    ) -> AsyncEventStream[Any]:
        request = self._request(call, values, streaming=True)
        response = self._gateway.stream_async(self.name, **request.options(timeout))
        return AsyncEventStream(response, _decoder(self.name, events))

    def _live(
        self,
        *,
        model: str | None,
        params: Mapping[str, object] | None,
        request_id: str | None,
        stream_id: str | None,
    ) -> LiveSession:
        spec = self._live_params
        if spec is not None:
            payload: dict[str, object] | None = build_input(
                self.name, spec.input, params or {}, spec.omit_if_none
            )
        else:
            payload = dict(params) if params is not None else None
        return self._gateway.live(
            self.name, model=model, params=payload, request_id=request_id, stream_id=stream_id
        )


class Capability:
    """Untyped handle for any capability name: ``gw.capabilities["text-reversal"].run(input={"text": "hi"})``."""

    def __init__(self, gateway: Gateway, name: str) -> None:
        self._gateway = gateway
        self.name = name

    def __repr__(self) -> str:
        return f"Capability({self.name!r})"

    def run(
        self,
        *,
        input: Mapping[str, object] | None = None,
        model: str | None = None,
        timeout: float | None = None,
    ) -> object:
        """The decoded result: ``handle.run(input={"text": "hi"})``."""
        return self._gateway.run(self.name, input=input, model=model, timeout=timeout)

    async def run_async(
        self,
        *,
        input: Mapping[str, object] | None = None,
        model: str | None = None,
        timeout: float | None = None,
    ) -> object:
        """Async twin of :meth:`run`."""
        return await self._gateway.run_async(self.name, input=input, model=model, timeout=timeout)

    def stream(
        self,
        *,
        input: Mapping[str, object] | None = None,
        model: str | None = None,
        timeout: float | None = None,
    ) -> StreamResponse:
        """Server-sent events: ``for ev in handle.stream(input={...}): print(ev.data)``."""
        return self._gateway.stream(self.name, input=input, model=model, timeout=timeout)

    def stream_async(
        self,
        *,
        input: Mapping[str, object] | None = None,
        model: str | None = None,
        timeout: float | None = None,
    ) -> AsyncStreamResponse:
        """Async twin of :meth:`stream`."""
        return self._gateway.stream_async(self.name, input=input, model=model, timeout=timeout)

    def live(
        self,
        *,
        model: str | None = None,
        params: Mapping[str, object] | None = None,
        request_id: str | None = None,
        stream_id: str | None = None,
    ) -> LiveSession:
        """A live session: ``async with handle.live(model="noop") as session: ...``."""
        return self._gateway.live(
            self.name, model=model, params=params, request_id=request_id, stream_id=stream_id
        )


class CapabilityIndex:
    """Base of a generated ``Capabilities`` index: one cached wrapper per typed capability, and
    ``index["any-name"]`` for an untyped :class:`Capability`. The subclass lists ``names`` and has one
    property per capability that imports the capability's module on first access and calls :meth:`_load`."""

    names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._loaded: dict[type[TypedCapability], TypedCapability] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self.names)} typed>"

    def __getitem__(self, name: str) -> Capability:
        """Untyped handle for any capability: ``caps["text-reversal"].run(input={"text": "hi"})``."""
        return Capability(self._gateway, name)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def _load(self, cls: type[W]) -> W:
        wrapper = self._loaded.get(cls)
        if not isinstance(wrapper, cls):
            wrapper = cls(self._gateway)
            self._loaded[cls] = wrapper
        return wrapper
