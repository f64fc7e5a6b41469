"""YAML loading that remembers where every key and item came from, so errors can name a line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from daemon.config.problems import ConfigError, Problem

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Source:
    """A parsed YAML document plus the 1-based line of every path in it."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Iterable[str | int]) -> int:
        """Line of `path`, or of its longest existing prefix (a missing key: its parent)."""
        parts = tuple(path)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), 1)

    def problem(self, path: Iterable[str | int], message: str, fix: str = "") -> Problem:
        return Problem(self.file, self.line(path), message, fix)


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, file)
            if key in out:
                raise ConfigError(
                    [Problem(file, key_node.start_mark.line + 1, f"duplicate key {key!r}",
                             "remove one of the two; YAML keeps only the last")]
                )
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, path + (key,), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), lines, file) for i, item in enumerate(node.value)]
    return _scalar(node, file)


def _scalar(node: yaml.Node, file: str) -> Any:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError([Problem(file, line, "a key must be a plain value",
                                   "write the key as a word, not a list or mapping")])
    try:
        return _LOADER.construct_object(node, deep=True)
    except ValueError as exc:  # e.g. 2026-13-24 looks like a date but is none
        raise ConfigError([Problem(file, line, f"{node.value!r} is not a valid value: {exc}",
                                   "fix it, or quote it to keep it as text")]) from None


# One loader instance only to reuse SafeLoader's scalar resolution (ints, bools, dates).
_LOADER = yaml.SafeLoader("")


def parse_yaml(text: str, file: str) -> Source:
    """Parse YAML text; a syntax error becomes a ConfigError with the line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        message = f"YAML syntax error: {exc.problem or exc}"
        if exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
            # An unclosed bracket is only noticed much later; name where it opened.
            message += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
        raise ConfigError(
            [Problem(file, line, message,
                     "check indentation, colons, brackets and quoting")]
        ) from None
    lines: dict[Path_, int] = {}
    data = {} if node is None else _convert(node, (), lines, file)
    return Source(file, data, lines)


def load_yaml(path: Path) -> Source:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(str(path), 0, f"cannot read file: {exc}")]) from None
    return parse_yaml(text, str(path))
