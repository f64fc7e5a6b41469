"""Turn pydantic's validation errors into file:line problems an admin can act on."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from daemon.problems import Problem
from daemon.yamlsource import Path_, Source

# Union branches that only say "or nothing"; the other branch's error is the useful one.
_NOISE = {"none_required"}


def pydantic_problems(exc: ValidationError, source: Source, root: type[BaseModel]) -> list[Problem]:
    """One problem per location, with the line taken from the YAML source."""
    merged: dict[Path_, list[dict[str, Any]]] = {}
    for error in exc.errors():
        if error["type"] in _NOISE:
            continue
        path = _data_path(source.data, error["loc"])
        if error["type"] == "extra_forbidden" or error["type"] == "missing":
            path = path + (error["loc"][-1],) if path[-1:] != error["loc"][-1:] else path
        merged.setdefault(path, []).append(error)
    return [_problem(source, root, path, errors) for path, errors in merged.items()]


def _data_path(data: Any, loc: tuple[Any, ...]) -> Path_:
    """The part of pydantic's `loc` that exists in the data (drops union branch tags)."""
    path: list[str | int] = []
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            continue
        path.append(part)
    return tuple(path)


def _problem(source: Source, root: type[BaseModel], path: Path_,
             errors: list[dict[str, Any]]) -> Problem:
    first = errors[0]
    key = first["loc"][-1] if first["loc"] else ""
    if first["type"] == "extra_forbidden":
        allowed = allowed_keys(root, path[:-1])
        close = difflib.get_close_matches(str(key), allowed, n=1)
        fix = f"did you mean {close[0]!r}? " if close else ""
        return source.problem(path, f"unknown key {key!r}",
                              fix + f"allowed here: {', '.join(allowed)}")
    if first["type"] == "missing":
        return source.problem(path, f"missing required key {key!r}", f"add `{key}:`")
    where = ".".join(str(p) for p in path) or "file"
    messages = " or ".join(dict.fromkeys(_message(e) for e in errors))
    # Our own validators already say how to write the value; pydantic's messages do not.
    fix = "" if all(e["type"] == "value_error" for e in errors) else "fix the value"
    return source.problem(path, f"{where}: {messages}", fix)


def _message(error: dict[str, Any]) -> str:
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if error["type"] not in ("value_error",) and "input" in error:
        value = error["input"]
        if not isinstance(value, dict | list):
            message += f", not {value!r}"
    return message


def allowed_keys(root: type[BaseModel], path: Path_) -> list[str]:
    """Field names of the model found at `path` inside `root` (for "unknown key" hints)."""
    current: Any = root
    for part in path:
        current = _child_type(current, part)
        if current is None:
            return []
    model = _find_model(current)
    return list(model.model_fields) if model else []


def _child_type(tp: Any, part: str | int) -> Any:
    model = _find_model(tp)
    if model is not None and isinstance(part, str) and part in model.model_fields:
        return model.model_fields[part].annotation
    for arg in _args(tp):
        origin = typing.get_origin(arg)
        if origin is dict:
            return typing.get_args(arg)[1]
        if origin in (tuple, list):
            return typing.get_args(arg)[0]
    return None


def _find_model(tp: Any) -> type[BaseModel] | None:
    for arg in _args(tp):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _args(tp: Any) -> list[Any]:
    """`tp` itself and the members of a union or Annotated, flattened."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _args(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [a for arg in typing.get_args(tp) for a in _args(arg)]
    return [tp]
