"""What a ``Pipeline.predict`` signature means: its input model and its output (value and/or stream items)."""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, create_model

from livepeer.runner._errors import PipelineDefinitionError
from livepeer.runner._pipeline import Pipeline

_ITERATOR_ORIGINS = (
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.Generator,
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
)
_NO_VALUE = object()

FuncKind = Literal["sync", "async", "gen", "asyncgen"]


@dataclass(frozen=True)
class PredictSpec:
    input_model: type[BaseModel]
    output_type: Any
    """Annotation of a plain returned value, or ``_NO_VALUE`` when predict only streams."""
    item_type: Any
    """Annotation of one streamed item, or ``_NO_VALUE`` when predict never streams."""
    kind: FuncKind

    @property
    def returns_value(self) -> bool:
        return self.output_type is not _NO_VALUE

    @property
    def streams(self) -> bool:
        return self.item_type is not _NO_VALUE

    @property
    def returns_bytes(self) -> bool:
        return self.output_type is bytes


def predict_spec(cls: type[Pipeline]) -> PredictSpec:
    predict = getattr(cls, "predict", None)
    if predict is None or not callable(predict):
        raise PipelineDefinitionError(f"{cls.__qualname__} must define predict(self, ...)")
    try:
        hints = typing.get_type_hints(predict, include_extras=True)
    except Exception as exc:  # a forward reference that cannot be resolved at module level
        raise PipelineDefinitionError(
            f"cannot resolve the annotations of {cls.__qualname__}.predict: {exc}"
        ) from exc
    signature = inspect.signature(predict)
    fields: dict[str, Any] = {}
    for index, param in enumerate(signature.parameters.values()):
        if index == 0:
            continue  # self
        where = f"{cls.__qualname__}.predict parameter {param.name!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise PipelineDefinitionError(f"{where}: only named parameters can come from the input")
        if param.name not in hints:
            raise PipelineDefinitionError(f"{where} needs a type annotation")
        if param.name.startswith("_"):
            raise PipelineDefinitionError(f"{where}: input names cannot start with '_'")
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints[param.name], default)
    model_name = cls.input_model_name or f"{cls.__name__}Input"
    config = ConfigDict(extra=cls.extra_inputs, title=model_name)
    try:
        input_model = create_model(model_name, __config__=config, **fields)
    except Exception as exc:
        raise PipelineDefinitionError(
            f"cannot build the input model of {cls.__qualname__}: {exc}"
        ) from exc

    if inspect.isasyncgenfunction(predict):
        kind: FuncKind = "asyncgen"
    elif inspect.isgeneratorfunction(predict):
        kind = "gen"
    elif inspect.iscoroutinefunction(predict):
        kind = "async"
    else:
        kind = "sync"

    if "return" not in hints:
        if kind in ("gen", "asyncgen"):
            return PredictSpec(input_model, _NO_VALUE, Any, kind)
        return PredictSpec(input_model, Any, _NO_VALUE, kind)
    values, items = _split_return(hints["return"])
    if kind in ("gen", "asyncgen") and (values or not items):
        raise PipelineDefinitionError(
            f"{cls.__qualname__}.predict is a generator: annotate it as Iterator[T] or AsyncIterator[T]"
        )
    output_type = _union(values) if values else _NO_VALUE
    item_type = _union(items) if items else _NO_VALUE
    return PredictSpec(input_model, output_type, item_type, kind)


def _split_return(annotation: Any) -> tuple[list[Any], list[Any]]:
    """Split a return annotation into plain value types and streamed item types."""
    origin = typing.get_origin(annotation)
    members = (
        list(typing.get_args(annotation))
        if origin is Union or origin is types.UnionType
        else [annotation]
    )
    values: list[Any] = []
    items: list[Any] = []
    for member in members:
        member_origin = typing.get_origin(member) or member
        if isinstance(member_origin, type) and member_origin in _ITERATOR_ORIGINS:
            args = typing.get_args(member)
            items.append(args[0] if args else Any)
        else:
            values.append(member)
    return values, items


def _union(members: list[Any]) -> Any:
    if len(members) == 1:
        return members[0]
    return Union[tuple(members)]  # noqa: UP007 - built at runtime from a list
