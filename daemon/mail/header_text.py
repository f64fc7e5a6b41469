"""Raw header values to text: unfolding, raw 8-bit bytes and RFC 2047 encoded words,
Message-IDs (as written, brackets stripped), display names and dates.

Nothing here raises on bad input. Dates in the format every client writes are read by a quick
path (`_rfc5322_date`) that gives what email.utils gives and hands everything else to it;
bench/parse_check.py counts how often it answers.
"""

from __future__ import annotations

import binascii
import email.utils
import re
from datetime import UTC, datetime, timedelta, timezone

from daemon.mail.charsets import decode_bytes

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # no CR/LF may reach a header we build later
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(?<=\?=)[ \t\r\n]+(?==\?[^?\s]+\?[bBqQ]\?)")


def decode_header(raw: str) -> str:
    """A header value as text: unfolded, raw 8-bit bytes and RFC 2047 words decoded."""
    text = unfold(raw)
    if "=?" in text:
        text = _ENCODED_WORD.sub(_decode_word, _BETWEEN_WORDS.sub("", text))
    return _CONTROL.sub(" ", text).strip()


def unfold(raw: str) -> str:
    text = _FOLD.sub("", raw) if "\n" in raw else raw  # most values are one line
    if not text.isascii():
        data = text.encode("utf-8", "surrogateescape")  # the parser's escaped raw bytes
        text = decode_bytes(data, "utf-8")[0]
    return text.replace("\r", "").replace("\n", " ")


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, payload = match[1].split("*")[0], match[2].upper(), match[3]
    try:
        if encoding == "B":
            data = binascii.a2b_base64(payload + "=" * (-len(payload) % 4))
        else:
            data = binascii.a2b_qp(payload.encode("ascii", "replace"), header=True)
    except (binascii.Error, ValueError):
        return match[0]
    return decode_bytes(data, charset)[0]


_ID_OR_COMMENT = re.compile(r"<([^<>]*)>|\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)")
_COMMENT = re.compile(r"\([^()]*\)")
MAX_ID = 900  # longer "ids" are junk: the mail then counts as having none


def message_ids(value: str) -> list[str]:
    """Message-IDs in a messy Message-ID, In-Reply-To or References value, exactly as written
    (case kept, spaces inside the brackets kept), brackets stripped, in order, each once.
    Without brackets, the words with an @ are the ids."""
    text = unfold(value)
    # Left to right, a bracketed id or a comment: what stands in brackets is the id,
    # parentheses and all, and brackets inside a comment are no id.
    found = [m[1].strip() for m in _ID_OR_COMMENT.finditer(text) if m[1] is not None]
    if not any(found):
        for _ in range(3 if "(" in text else 0):  # comments, nested up to three deep
            text = _COMMENT.sub(" ", text)
        found = [t.strip("<>,;\"'") for t in re.split(r"[\s,;]+", text) if "@" in t]
    return list(dict.fromkeys(f for f in found if 0 < len(f) <= MAX_ID))


def normalise_message_id(value: str) -> str | None:
    """The first Message-ID in a header value, as Tierdesk stores and compares it."""
    ids = message_ids(value) if value else []
    return ids[0] if ids else None

_NAME_CONTROL = re.compile(r"[\x7f-\x9f\u2028\u2029]")  # beyond decode_header's ASCII ones


def display_name(raw: str) -> str:
    """A display name as written (the structure already read) to text: decoded, and no
    control character or line break left that could start a header in mail we write."""
    return _NAME_CONTROL.sub(" ", decode_header(raw)).strip()

def header_date(value: str) -> datetime | None:
    if not value.strip():
        return None
    text = unfold(value)
    parsed = _rfc5322_date(text)
    if parsed is None:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (ValueError, TypeError, IndexError, OverflowError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_RFC5322_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|"
    r"Oct|Nov|Dec) (\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")


def _rfc5322_date(text: str) -> datetime | None:
    """What parsedate_to_datetime gives for the date format every client writes
    ("Mon, 02 Mar 2026 07:30:58 +0100"); None for anything else, -0000 (no known offset),
    a year below 100 (which the stdlib moves to 19xx/20xx) or an impossible date."""
    match = _RFC5322_DATE.fullmatch(text.strip())
    if match is None or match[7] + match[8] + match[9] == "-0000" or int(match[3]) < 100:
        return None
    offset = int(match[8]) * 3600 + int(match[9]) * 60
    try:
        return datetime(int(match[3]), _MONTHS[match[2]], int(match[1]), int(match[4]),
                        int(match[5]), int(match[6]),
                        tzinfo=timezone(timedelta(seconds=-offset if match[7] == "-" else offset)))
    except ValueError:
        return None
