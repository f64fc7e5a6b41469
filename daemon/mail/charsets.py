"""Mail bytes to text whatever the declared charset says: the declared codec, else UTF-8,
else cp1252, else Latin-1, never raising, and a note of what went wrong.

Header values (daemon.mail.header_text) and text bodies (daemon.mail.message) decode here.
"""

from __future__ import annotations

import codecs
import functools

_ALIASES = {"iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6",
            "x-user-defined": "cp1252", "unicode-1-1-utf-7": "utf-7", "utf8mb4": "utf-8",
            "x-unknown": "", "unknown-8bit": "", "default": ""}
_NOT_FOR_MAIL = frozenset({"unicode_escape", "raw_unicode_escape", "idna", "punycode",
                           "undefined", "mbcs", "oem"})


@functools.lru_cache(maxsize=256)
def _codec(charset: str | None) -> str | None:
    """Python's codec for a declared charset, or None when unknown or not a text codec."""
    name = (charset or "").strip().strip("\"'").lower()
    name = _ALIASES.get(name, name)
    if not name:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_FOR_MAIL:
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Text from bytes: declared charset, else UTF-8, else cp1252, else Latin-1.
    The second value says what went wrong, or None."""
    declared = _codec(charset)
    for name in (declared, "utf-8", "cp1252"):
        if name is None:
            continue
        try:
            text = data.decode(name)
        except (UnicodeError, LookupError):
            continue
        return text, _charset_problem(charset, declared, name)
    return data.decode("latin-1"), _charset_problem(charset, declared, "latin-1")


def _charset_problem(charset: str | None, declared: str | None, used: str) -> str | None:
    if declared == used or (declared is None and not charset and used == "utf-8"):
        return None
    if charset and declared is None:
        return f"unknown charset {charset!r}, read as {used}"
    return f"text is not valid {charset or 'us-ascii'}, read as {used}"
