"""Turn record validation errors (daemon/records.py) into file:line problems an admin can act
on: what is wrong, with the value shown, and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from daemon.problems import Problem
from daemon.records import ErrorDict
from daemon.yamlsource import Path_, Source


def validation_problems(errors: Iterable[ErrorDict], source: Source) -> list[Problem]:
    """One problem per location, with the line taken from the YAML source."""
    merged: dict[Path_, list[ErrorDict]] = {}
    for error in errors:
        path = _data_path(source.data, error["loc"])
        if error["type"] == "extra_forbidden" or error["type"] == "missing":
            path = path + (error["loc"][-1],) if path[-1:] != error["loc"][-1:] else path
        merged.setdefault(path, []).append(error)
    return [_problem(source, path, errors) for path, errors in merged.items()]


def _data_path(data: Any, loc: tuple[Any, ...]) -> Path_:
    """The part of `loc` that exists in the data (a value a validator rewrote, such as a
    comma-separated string made a list, has no items of its own in the file)."""
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


def _problem(source: Source, path: Path_, errors: list[ErrorDict]) -> Problem:
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


def describe(error: ErrorDict) -> str:
    """The error's message; a type or range error also shows the value it got (unless it is
    a whole mapping or list, which the file line already shows, or a secret)."""
    message = error["msg"]
    if error["type"] != "value_error" and "input" in error:
        value = error["input"]
        if not isinstance(value, dict | list):
            message += f", not {value!r}"
    return message
