"""Command tags in the new text of a reply: `#word arguments` at the start of a line.

Only detection and splitting: which names exist, their grammar and who may use them
come later (issue 5). Any `#name` is returned, so a mistyped `#esclate` can get a "did
you mean" answer rather than silence. Give this the new text only (InboundMessage
.new_text): quoted history and signatures are already cut there.

A tag is `#` then a letter, then letters, digits, `_` or `-`, at the start of a line
(leading spaces allowed), then optionally ":", then a space or the end of the line:
`#123`, `# heading` and `#tag,` are not tags. Names are lower-cased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAG = re.compile(r"^[ \t]*#([^\W\d_][\w-]*):?(?:[ \t]+(.*?))?[ \t]*$")


@dataclass(frozen=True)
class Command:
    name: str            # lower case, without "#"
    argument_text: str   # the rest of the line, stripped
    line_no: int         # 1-based line in the new text


@dataclass(frozen=True)
class TagScan:
    commands: tuple[Command, ...]
    text: str            # the new text with the tag lines removed


def find_tags(new_text: str) -> TagScan:
    commands: list[Command] = []
    kept: list[str] = []
    for line_no, line in enumerate(new_text.split("\n"), start=1):
        match = _TAG.match(line)
        if match:
            commands.append(Command(match[1].lower(), (match[2] or "").strip(), line_no))
        else:
            kept.append(line)
    return TagScan(tuple(commands), _tidy(kept))


def _tidy(lines: list[str]) -> str:
    """Removing tag lines can leave blank runs; keep at most one blank line between."""
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return text.strip("\n")
