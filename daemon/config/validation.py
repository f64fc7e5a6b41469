"""Turn pydantic's validation errors into file:line problems an admin can act on: what is
wrong, with the value shown, and how to fix it."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from daemon.config.frozen import SECRET_TYPE
from daemon.config.problems import Problem
from daemon.config.yamlsource import Path_, Source

# pydantic puts these before the message of a ValueError raised by our validators.
_PREFIXES = ("Value error, ", "Assertion failed, ")


def model_errors(exc: ValidationError, data: Any, root: type[BaseModel]) -> list[ErrorDetails]:
    """`exc`'s errors as validation_problems reads them. `data` is what was validated and
    `root` its model: an unknown key's error gets the allowed keys (ctx "allowed"), a
    secret's error loses its input, and a union reports only the member that fitted."""
    errors = _without_short(_fitting_members(exc.errors(include_url=False), data))
    found: list[ErrorDetails] = []
    for error in errors:
        message = error["msg"]
        for prefix in _PREFIXES:
            message = message.removeprefix(prefix)
        plain: dict[str, Any] = {**error, "msg": message}
        if error["type"] == SECRET_TYPE:
            plain.pop("input", None)
        if error["type"] == "extra_forbidden":
            model_path = _data_path(data, error["loc"])[:-1]
            plain["ctx"] = {"allowed": tuple(allowed_keys(root, model_path))}
        found.append(typing.cast(ErrorDetails, plain))
    return found


def _fitting_members(errors: list[ErrorDetails], data: Any) -> list[ErrorDetails]:
    """pydantic reports every member of a failed union, each under a tag naming it (e.g.
    `teams.literal['all']` and `teams.tuple[...].0`). A member that got inside the value (its
    errors lie below its tag) accepted its shape: its errors say what is wrong, and "should
    be 'all'" for a list would only distract."""
    tags = [_union_tag(data, error) for error in errors]
    inside = {error["loc"][:tag] for error, tag in zip(errors, tags, strict=True)
              if tag is not None and len(error["loc"]) > tag + 1}
    return [error for error, tag in zip(errors, tags, strict=True)
            if tag is None or len(error["loc"]) > tag + 1 or error["loc"][:tag] not in inside]


def _without_short(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """pydantic counts a list's length without its bad items: `[P 1]` would also be "should
    have at least 1 item, not 0". The item's own error is the one to fix."""
    below = {error["loc"][:i] for error in errors for i in range(len(error["loc"]))}
    return [error for error in errors
            if error["type"] != "too_short" or error["loc"] not in below]


def _union_tag(data: Any, error: ErrorDetails) -> int | None:
    """Where in `loc` the first union tag is: a name that is no key of the data there. (A
    missing key is not in the data either, but it is the last part; an index into a value a
    validator rewrote, such as a comma-separated string, is no name; `[key]` marks an error
    in a dict key.)"""
    loc = error["loc"]
    for i, part in enumerate(loc):
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        elif isinstance(part, str) and part != "[key]" and \
                (i < len(loc) - 1 or error["type"] != "missing"):
            return i
    return None


def validation_problems(errors: Iterable[ErrorDetails], source: Source) -> list[Problem]:
    """One problem per location, with the line taken from the YAML source."""
    merged: dict[Path_, list[ErrorDetails]] = {}
    for error in errors:
        path = _data_path(source.data, error["loc"])
        if error["type"] == "extra_forbidden" or error["type"] == "missing":
            path = path + (error["loc"][-1],) if path[-1:] != error["loc"][-1:] else path
        merged.setdefault(path, []).append(error)
    return [_problem(source, path, errors) for path, errors in merged.items()]


def _data_path(data: Any, loc: tuple[Any, ...]) -> Path_:
    """The part of `loc` that exists in the data: no union tags, and no items of a value a
    validator rewrote (a comma-separated string made a list has none in the file)."""
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


def _problem(source: Source, path: Path_, errors: list[ErrorDetails]) -> Problem:
    first = errors[0]
    key = first["loc"][-1] if first["loc"] else ""
    if first["type"] == "extra_forbidden":
        allowed = [str(name) for name in first.get("ctx", {}).get("allowed", ())]
        close = difflib.get_close_matches(str(key), allowed, n=1)
        fix = f"did you mean {close[0]!r}? " if close else ""
        return source.problem(path, f"unknown key {key!r}",
                              fix + f"allowed here: {', '.join(allowed)}")
    if first["type"] == "missing":
        return source.problem(path, f"missing required key {key!r}", f"add `{key}:`")
    where = ".".join(str(p) for p in path) or "file"
    messages = " or ".join(dict.fromkeys(describe(e) for e in errors))
    # Our own validators already say how to write the value; the type checks do not.
    fix = "" if all(e["type"] == "value_error" for e in errors) else "fix the value"
    return source.problem(path, f"{where}: {messages}", fix)


def describe(error: ErrorDetails) -> str:
    """The error's message; a type or range error also shows the value it got (unless it is
    a whole mapping or list, which the file line already shows, or a secret)."""
    message = error["msg"]
    if error["type"] != "value_error" and "input" in error:
        value = error["input"]
        if not isinstance(value, dict | list):
            message += f", not {value!r}"
    return message


# ------------------------------------------------------------------ allowed keys

def allowed_keys(root: type[BaseModel], path: Path_) -> list[str]:
    """Field names of the model found at data `path` inside `root` (for "unknown key" hints)."""
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
