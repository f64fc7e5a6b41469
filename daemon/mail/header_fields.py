"""Quick readings of the header fields every mail has: address lists and MIME parameters.

The stdlib reads these one character at a time in Python (email._parseaddr for From/To/Cc,
email.message's parameter code for Content-Type and Content-Disposition), and on a typical
mail that was a fifth of the parsing time. Nearly every real value is one of a few plain
shapes, `Jane Doe <jane@example.org>` or `text/plain; charset="utf-8"`, which one regular
expression or str.split reads. The functions here read exactly those shapes and give exactly
what the stdlib gives; for anything else (quoting with backslashes, comments, groups, RFC 2231
parameters, non-ASCII raw bytes, a ';' inside quotes, empty list entries ...) they return
None and the caller asks the stdlib, or for addresses daemon.mail.addresses's strict reading
(the stdlib guesses there). tests/mail/test_header_fields.py holds the two to the same result.
"""

from __future__ import annotations

import re
from email.message import Message
from email.utils import collapse_rfc2231_value, unquote

# A parameter value: str, or (charset, language, text) for RFC 2231 (as Message.get_params).
ParamValue = str | tuple[str | None, str | None, str]
Params = list[tuple[str, ParamValue]]


# ------------------------------------------------------------------ MIME parameters

def mime_params(value: str) -> Params | None:
    """What Message.get_params() returns for a header with this raw value (the first pair is
    the part before the first ';', e.g. ("text/plain", "")), or None when only the stdlib
    may read it: non-ASCII (the stdlib turns such values into Header objects), backslashes
    (quoted-pair unescaping), '*' (RFC 2231 continuations and charsets), or a piece with an
    odd number of quotes (a ';' inside a quoted string)."""
    if "\\" in value or "*" in value or not value.isascii():
        return None
    params: Params = []
    for piece in value.split(";"):
        if piece.count('"') % 2:
            return None
        name, equals, text = piece.partition("=")
        if equals:  # email.message._parseparam and _get_params_preserve, step by step
            params.append((name.strip().lower(), unquote(text.strip())))
        else:
            params.append((piece.strip(), ""))
    return params


def header_params(msg: Message, header: str = "content-type") -> Params | None:
    """msg.get_params(header=header): None when the header is missing."""
    value = msg.get(header)
    if isinstance(value, str):
        params = mime_params(value)
        if params is not None:
            return params
    return msg.get_params(header=header)


def find_param(params: Params | None, name: str) -> ParamValue | None:
    """Message.get_param: the first parameter of that name (any case), else None."""
    for key, value in params or ():
        if key.lower() == name:
            return value
    return None


def boundary(msg: Message) -> str | None:
    """msg.get_boundary()."""
    found = find_param(header_params(msg), "boundary")
    return None if found is None else collapse_rfc2231_value(found).rstrip()


def filename(msg: Message) -> str | None:
    """msg.get_filename(): Content-Disposition's filename, else Content-Type's name."""
    found = None
    disposition = header_params(msg, "content-disposition")
    if disposition is not None:
        found = find_param(disposition, "filename")
    if found is None:
        found = find_param(header_params(msg), "name")
    return None if found is None else collapse_rfc2231_value(found).strip()


# ------------------------------------------------------------------ address lists

# _parseaddr's atoms end at its specials ()<>@,:;." and [] and at space, tab, CR and LF.
# A phrase word is an atom (dots allowed) or a quoted string; backslashes (quoted pairs, and
# everywhere else to keep this simple) send the value to the general parser. An address is
# held to printable ASCII: the parser drops atoms of other whitespace (U+00A0 ...) next to
# its dots. Possessive quantifiers: no backtracking on long runs of word characters.
_ATOM = r'[^ \t\r\n()<>@,:;"\[\]\\]++'
_WORD = rf'{_ATOM}|"[^"\\\r\n]*+"'
_ADDR_ATOM = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]++"  # RFC 5322 atext, and dots
_ADDR_SPEC = rf"{_ADDR_ATOM}@{_ADDR_ATOM}"
_MAILBOX = re.compile(
    rf"[ \t]*+(?:((?:(?:{_WORD})[ \t]*+)*+)<({_ADDR_SPEC})>|({_ADDR_SPEC}))[ \t]*+")
_WORDS = re.compile(_WORD)


def simple_addresses(text: str) -> list[tuple[str, str]] | None:
    """email.utils.getaddresses([text]) when `text` is a comma-separated list of mailboxes,
    each `addr@host` or `Display Name <addr@host>` (quoted display names included);
    None for anything else: groups, comments, routes, escapes, empty entries ..."""
    pairs: list[tuple[str, str]] = []
    position, end = 0, len(text)
    while True:
        match = _MAILBOX.match(text, position)
        if match is None:
            return None
        if match[2] is None:
            pairs.append(("", match[3]))
        else:  # the phrase's words joined by one space, quoted ones without their quotes
            words = _WORDS.findall(match[1])
            pairs.append((" ".join(w[1:-1] if w[0] == '"' else w for w in words), match[2]))
        position = match.end()
        if position == end:
            return pairs
        if text[position] != ",":
            return None
        position += 1
