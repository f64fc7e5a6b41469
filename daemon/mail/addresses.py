"""Address lists (From, Reply-To, To, Cc ...) read strictly, as RFC 5322 section 3.4 writes them.

Who wrote a mail is read from its From, and a guess there lets anyone run commands in a
technician's name: the stdlib's lenient getaddresses read
`=?utf-8?q?x_=0A?=<alex.chen@example.com> <attacker@evil.test>` as alex.chen's mail. Here an
entry is read only when its structure is plain: a display name of words (atoms and quoted
strings; an encoded word is an atom and stays undecoded, the caller decodes the name as text
only) and one address in angle brackets, or a bare address; comments, groups and empty entries
as RFC 5322 allows them. Anything else (two addresses in one entry, an unquoted '@', ':' or
'<' in a name, an unclosed quote or comment, a group without its ';', an obsolete route) is
not read, and `problems` says which entry and why.

One lenience: some mailers write a "Last, First" name unquoted, `Martens, Bob <bob@x.org>`.
An entry of words only holds no address, so it is read as the start of the next mailbox's name
("Martens, Bob"), never as an address; with no mailbox after it, it is a problem.

The common shapes go by header_fields.simple_addresses, one regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from daemon.mail import header_fields

# (display name as written, quotes and escapes removed but not decoded; address)
Mailbox = tuple[str, str]


class AddressList(NamedTuple):  # not a dataclass: built for every address header, and cheaper
    mailboxes: tuple[Mailbox, ...] = ()
    problems: tuple[str, ...] = ()  # one per entry not read: the entry, then why


def read_addresses(text: str) -> AddressList:
    """The mailboxes of an unfolded address header value, quickly for the common shapes."""
    quick = header_fields.simple_addresses(text)  # looked up here: bench/parse_check counts it
    return AddressList(tuple(quick)) if quick is not None else strict_addresses(text)


class _Unreadable(Exception):
    """An entry that is no mailbox; the message says why."""


class _Token(NamedTuple):
    kind: str  # atom, quoted, literal, comment, bad, or the special itself: < > @ , : ;
    value: str  # quotes, brackets and escapes removed
    start: int
    end: int


_WORDS = ("atom", "quoted")
_SPECIALS = frozenset("<>,:;")
# The atom as header_fields reads it: everything but space and the specials (dots allowed,
# obs-phrase); an address is checked further (_ADDRESS_TEXT).
_LEX = re.compile(
    r'[ \t\r\n]+|(?P<atom>[^ \t\r\n()<>@,:;"\[\]\\]+)'
    r'|"(?P<quoted>(?:[^"\\\r\n]|\\[^\r\n])*)"|\[(?P<literal>(?:[^\[\]\\\r\n]|\\[^\r\n])*)\]'
    r'|(?P<special>[<>@,:;])|(?P<comment>\()|(?P<bad>["\[].*|.)', re.DOTALL)
_PAIR = re.compile(r"\\(.)", re.DOTALL)
_TO_ESCAPE = re.compile(r'(["\\\[\]])')
_ADDRESS_TEXT = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.\x80-\U0010ffff]+")


def strict_addresses(text: str) -> AddressList:
    """Every entry of the list read strictly (see the module's notes)."""
    reader = _Reader(text)
    for entry in _entries(_tokens(text)):
        reader.entry(entry)
    return reader.done()


# ------------------------------------------------------------------ tokens

def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while (match := _LEX.match(text, position)) is not None:
        kind, position = match.lastgroup, match.end()
        if kind == "comment":
            end = _comment_end(text, match.start())
            if end < 0:
                tokens.append(_Token("bad", text[match.start():], match.start(), len(text)))
                break
            tokens.append(_Token("comment", _PAIR.sub(r"\1", text[match.start() + 1:end - 1]),
                                 match.start(), end))
            position = end
        elif kind is not None:
            value = match[kind]
            kind = value if kind == "special" else kind
            tokens.append(_Token(kind, _PAIR.sub(r"\1", value) if "\\" in value else value,
                                 match.start(), position))
    return tokens


def _comment_end(text: str, start: int) -> int:
    """Where the comment opened at `start` ends (after its ')'), or -1 if it never does."""
    depth, position = 0, start
    while position < len(text):
        char = text[position]
        position += 2 if char == "\\" else 1
        depth += (char == "(") - (char == ")")
        if depth == 0:
            return position
    return -1


def _entries(tokens: list[_Token]) -> Iterator[list[_Token]]:
    """The list cut at its commas, a group (name: members;) kept whole."""
    entry: list[_Token] = []
    in_group = False
    for token in tokens:
        if token.kind == "," and not in_group:
            yield entry
            entry = []
            continue
        entry.append(token)
        in_group = (in_group or token.kind == ":") and token.kind != ";"
    yield entry


# ------------------------------------------------------------------ entries

class _Reader:
    """Collects mailboxes and problems, entry by entry, with the name fragments waiting."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.mailboxes: list[Mailbox] = []
        self.problems: list[str] = []
        self.fragments: list[list[_Token]] = []  # "Martens" of "Martens, Bob <...>"

    def entry(self, entry: list[_Token]) -> None:
        plain = [t for t in entry if t.kind != "comment"]
        if plain and all(t.kind in _WORDS for t in plain):
            self.fragments.append(entry)
            return
        try:
            if any(t.kind == ":" for t in plain):
                self._group(entry)
            elif plain:
                self._mailbox(entry)
        except _Unreadable as exc:
            self._unclaimed()
            self.problems.append(f"{self._shown(entry)}: {exc}")

    def done(self) -> AddressList:
        self._unclaimed()
        return AddressList(tuple(self.mailboxes), tuple(self.problems))

    def _mailbox(self, entry: list[_Token]) -> None:
        name, address = _read_mailbox(entry)
        if self.fragments:  # Outlook's unquoted "Last, First"
            words = [_phrase(f) for f in self.fragments]
            name = ", ".join([*words, name] if name else words)
            self.fragments = []
        self.mailboxes.append((name, address))

    def _group(self, entry: list[_Token]) -> None:
        members = list(_members(entry))  # raises before anything is kept
        self._unclaimed()
        for member in members:
            try:
                self.mailboxes.append(_read_mailbox(member))
            except _Unreadable as exc:
                self.problems.append(f"{self._shown(member)}: {exc}")

    def _unclaimed(self) -> None:
        """Name fragments no mailbox followed: entries without an address."""
        self.problems += [f"{self._shown(f)}: no address" for f in self.fragments]
        self.fragments = []

    def _shown(self, entry: Sequence[_Token]) -> str:
        """The entry as written, quoted with its control characters escaped."""
        raw = self.text[entry[0].start:entry[-1].end] if entry else ""
        return repr(raw if len(raw) <= 160 else raw[:160] + "...")


def _read_mailbox(entry: Sequence[_Token]) -> Mailbox:
    """`words <address>` or a bare address (its comment as the name, as the stdlib does);
    raises _Unreadable for anything else."""
    tokens = [t for t in entry if t.kind != "comment"]
    _no_bad(tokens)
    opening = [i for i, t in enumerate(tokens) if t.kind == "<"]
    if not opening:
        comments = [t.value.strip() for t in entry if t.kind == "comment"]
        return (comments[0] if comments else ""), _address(tokens)
    if len(opening) > 1:
        raise _Unreadable(f"{len(opening)} addresses in angle brackets in one mailbox")
    phrase, inside = tokens[:opening[0]], tokens[opening[0] + 1:]
    odd = next((t for t in phrase if t.kind not in _WORDS), None)
    if odd is not None:
        raise _Unreadable(f"an unquoted {odd.kind!r} in the display name")
    closing = next((i for i, t in enumerate(inside) if t.kind == ">"), None)
    if closing is None:
        raise _Unreadable("'<' without its '>'")
    if closing != len(inside) - 1:
        raise _Unreadable("text after the address in angle brackets")
    return _phrase(phrase), _address(inside[:-1])


def _members(entry: list[_Token]) -> Iterator[list[_Token]]:
    """The mailboxes of a group `name: a@b, c@d;` (none for `undisclosed-recipients:;`)."""
    tokens = [t for t in entry if t.kind != "comment"]
    _no_bad(tokens)
    colon = next(i for i, t in enumerate(tokens) if t.kind == ":")
    if not tokens[:colon] or any(t.kind not in _WORDS for t in tokens[:colon]):
        raise _Unreadable("an unquoted ':' that starts no group")
    if tokens[-1].kind != ";":
        raise _Unreadable("a group (':') that no ';' ends")
    inner = tokens[colon + 1:-1]
    if any(t.kind in (":", ";") for t in inner):
        raise _Unreadable("a group inside a group")
    cuts = [-1, *(i for i, t in enumerate(inner) if t.kind == ","), len(inner)]
    for start, stop in zip(cuts, cuts[1:], strict=False):
        if stop > start + 1:
            yield inner[start + 1:stop]


def _no_bad(tokens: Sequence[_Token]) -> None:
    bad = next((t for t in tokens if t.kind == "bad"), None)
    if bad is None:
        return
    opening = bad.value[:1]
    raise _Unreadable({'"': "a quoted string without its closing '\"'",
                       "[": "a '[' without its ']'",
                       "(": "a comment without its closing ')'"}.get(
                           opening, f"a stray {opening!r}"))


def _address(tokens: Sequence[_Token]) -> str:
    """local@domain from exactly three tokens; quoted local parts and [literals] as written."""
    kinds = [t.kind for t in tokens]
    odd = next((k for k in kinds if k in _SPECIALS), None)
    if odd is not None:
        raise _Unreadable(f"an unquoted {odd!r} in the address")
    if kinds.count("@") != 1:
        raise _Unreadable("no address (no '@')" if "@" not in kinds else "more than one '@'")
    if (len(tokens) != 3 or kinds[1] != "@" or kinds[0] not in _WORDS
            or kinds[2] not in ("atom", "literal")):
        shown = " ".join(t.value for t in tokens)[:80]
        raise _Unreadable(f"not one address: {shown!r}")
    local, _, domain = tokens
    for part in (local, domain):
        if not part.value.isprintable() or (
                part.kind == "atom" and not _ADDRESS_TEXT.fullmatch(part.value)):
            raise _Unreadable(f"{part.value!r} holds characters no address may hold")
    return f"{_written(local)}@{_written(domain)}"


def _written(token: _Token) -> str:
    """An address part as written: quoted strings and [literals] escaped again."""
    if token.kind == "atom":
        return token.value
    escaped = _TO_ESCAPE.sub(r"\\\1", token.value)
    return f'"{escaped}"' if token.kind == "quoted" else f"[{escaped}]"


def _phrase(tokens: Sequence[_Token]) -> str:
    """The display name: its words joined by one space, as the stdlib joins them."""
    return " ".join(t.value for t in tokens if t.kind in _WORDS)
