"""Typed dataclasses to JSON-able data and back, by their fields: how pushes travel between nodes.

No push kind needs code of its own to cross to another node: its fields, named, are the payload,
and its type hints say how to read them back (bytes travel as base64; nested dataclasses,
tuples and optionals follow their hints).  The names are the contract between nodes of different
versions during a rolling upgrade: a field a node does not know is ignored, one it misses takes
its default.
"""

from __future__ import annotations

import base64
import dataclasses
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

__all__ = ["CodecError", "from_wire", "to_wire"]


class CodecError(ValueError):
    """Data that does not fit the dataclass it is read as."""


def to_wire(obj: Any) -> Any:
    """``obj`` as JSON-able data: dataclasses by field (their ``cache`` left out), bytes as
    ``{"$b": base64}``, tuples and lists as lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {name: to_wire(getattr(obj, name)) for name in _wire_fields(type(obj))}
    if isinstance(obj, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, tuple | list):
        return [to_wire(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_wire(v) for k, v in obj.items()}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise CodecError(f"cannot send a {type(obj).__name__} to another node")


def from_wire(cls: type, data: Any) -> Any:
    """The ``cls`` instance that :func:`to_wire` made ``data`` of."""
    return _decoder(cls)(data)


@cache
def _wire_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.name != "cache")


@cache
def _decoder(hint: Any) -> Callable[[Any], Any]:
    if dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is bytes:
        return _bytes
    if hint in (int, str, float, bool):
        return _scalar(hint)
    if hint is Any or hint is object:
        return lambda v: v
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        inner = _decoder(options[0]) if len(options) == 1 else (lambda v: v)
        return lambda v: None if v is None else inner(v)
    if origin in (tuple, list):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            return lambda v: tuple(item(x) for x in _sequence(v))
        if origin is tuple and args:
            items = [_decoder(a) for a in args]
            return lambda v: tuple(d(x) for d, x in zip(items, _sequence(v), strict=True))
        item = _decoder(args[0]) if args else (lambda v: v)
        make = tuple if origin is tuple else list
        return lambda v: make(item(x) for x in _sequence(v))
    if origin is dict:
        value = _decoder(args[1]) if len(args) == 2 else (lambda v: v)
        return lambda v: {k: value(x) for k, x in v.items()}
    raise CodecError(f"no wire form for {hint!r}")


def _dataclass_decoder(cls: type) -> Callable[[Any], Any]:
    hints = typing.get_type_hints(cls)
    fields = [(name, _decoder(hints[name])) for name in _wire_fields(cls)]

    def decode(data: Any) -> Any:
        if not isinstance(data, dict):
            raise CodecError(f"{cls.__name__} must be an object, not {type(data).__name__}")
        values = {name: read(data[name]) for name, read in fields if name in data}
        try:
            return cls(**values)
        except TypeError as e:
            raise CodecError(f"{cls.__name__}: {e}") from None

    return decode


def _sequence(value: Any) -> list:
    if not isinstance(value, list):
        raise CodecError(f"expected a list, not {type(value).__name__}")
    return value


def _bytes(value: Any) -> bytes:
    if isinstance(value, dict) and isinstance(value.get("$b"), str):
        return base64.b64decode(value["$b"])
    raise CodecError("bytes must be {'$b': base64}")


def _scalar(kind: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CodecError(f"expected {kind.__name__}, not {type(value).__name__}")
        return value

    return check
