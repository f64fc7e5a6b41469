"""How alike two reports are, in pure code: the words that say something about the problem,
a light stem, the overlap score behind `duplicates.similarity`, the best of a list of
candidates, and which few words of a report are worth a full-text query.

Used by daemon/store/search.py: look-alikes (the tickets of the last hours) are scored here
without any index; past fixes are found by the store's full-text index from the terms
`query_terms` picks, then scored here too, so a threshold means the same on either backend.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

REPORT_LINES = 8  # the report indexed: subject plus the mail's first lines
REPORT_CHARS = 1500
MIN_SHARED = 2  # one shared word ("printer") alone is no resemblance
# A term in more than this share of the documents finds nearly everything and tells little
# ("error", "connect"): it is left out of a past-fix query when rarer terms are there.
COMMON_SHARE = 0.05
CHEAP_DOCS = 1000  # ... unless it is in so few that ranking them all costs nothing anyway
OR_TERMS = 4  # rare terms ORed: each finds few documents, so ranking the union is cheap
AND_TERMS = 3  # only common terms: the rarest ones ANDed keep the matches few

_WORD = re.compile(r"[^\W_]+")
# Words that say nothing about the problem: function words and the usual mail phrases.
STOP_WORDS = frozenset("""
a about after again all am an and any are as at be been before being but by can cannot
could did do does doing don for from had has have having he her here hers him his how i if
in into is it its just me more my no nor not now of off on once only or other our out over
own same she should so some such than that the their them then there these they this those
through to too under until up very was we were what when where which while who whom why will
with would you your yours dear hi hello hey please thanks thank regards best cheers kind
sent iphone morning afternoon today yesterday since still also get got us re fw fwd aw wg sv
""".split())

T = TypeVar("T")


def words(text: str) -> list[str]:
    """The distinct meaningful words of `text`, lower case, in order of first use."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.casefold()):
        # Numbers count from three digits on (error codes, ports), not as "2" or "10".
        wanted = len(word) > 2 if word.isdigit() else len(word) > 1 and word not in STOP_WORDS
        if wanted:
            seen.setdefault(word, None)
    return list(seen)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English stem, so "printers" and "printer" count as one word when scoring."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@lru_cache(maxsize=8192)
def stems(text: str) -> frozenset[str]:
    # Cached: the window's reports are scored again by every batch while they are recent,
    # and a popular past fix is a candidate for many reports.
    return frozenset(map(stem, words(text)))


def similarity(query: frozenset[str], found: frozenset[str]) -> float:
    """Shared words over the shorter side's (the overlap coefficient): a short report is
    like a long one that says the same and more. 0 below MIN_SHARED words in common."""
    shared = len(query & found)
    if shared < MIN_SHARED:
        return 0.0
    return shared / min(len(query), len(found))


def report_text(subject: str, body: str) -> str:
    """What is indexed of a new ticket: its subject and the first lines of its mail."""
    lines = [line.strip() for line in body.replace("\r\n", "\n").splitlines()]
    head = "\n".join(line for line in lines if line)
    head = "\n".join(head.splitlines()[:REPORT_LINES])[:REPORT_CHARS]
    return f"{subject}\n{head}".strip()


def best(query: frozenset[str], candidates: Iterable[T], stems_of: Callable[[T], frozenset[str]],
         *, threshold: float, limit: int) -> list[tuple[float, T]]:
    """The candidates at least `threshold` alike, best first; equals keep the given order
    (newest first for the window, the index's rank for past fixes)."""
    scored = [(score, item) for item in candidates
              if (score := similarity(query, stems_of(item))) >= threshold and score > 0]
    scored.sort(key=lambda pair: -pair[0])  # stable: ties stay in the given order
    return scored[:limit]


@dataclass(frozen=True)
class TermQuery:
    """What a past-fix search asks the index: any of `terms` (`any_of`) or all of them."""

    terms: tuple[str, ...]
    any_of: bool


def query_terms(frequencies: Sequence[tuple[str, float | None]],
                documents: float) -> list[TermQuery]:
    """The queries to try, in order, for terms with their share of the `documents` (in
    order of use in the report; None: rare but not counted, as PostgreSQL's statistics
    leave out).

    A term in no document (0) finds nothing and is dropped. The rare ones (<= COMMON_SHARE
    or in at most CHEAP_DOCS documents),
    rarest first and earliest on ties, are ORed: the few documents that hold them are the
    candidates, ranked by the index and scored here. When every term is common (a small
    vocabulary), ORing them would rank most of the table: the rarest are ANDed instead, and
    if that finds nothing, the rarest two."""
    known = [(share if share is not None else 0.0, n, term)
             for n, (term, share) in enumerate(frequencies) if share != 0]
    distinct: dict[str, tuple[float, int]] = {}
    for share, n, term in known:
        distinct.setdefault(term, (share, n))  # two words, one stem: counted once
    ranked = sorted(distinct, key=lambda term: distinct[term])
    common = max(COMMON_SHARE, CHEAP_DOCS / documents) if documents > 0 else 1.0
    rare = [term for term in ranked if distinct[term][0] <= common]
    if rare:
        return [TermQuery(tuple(rare[:OR_TERMS]), any_of=True)]
    if len(ranked) < MIN_SHARED:
        return []  # one common word: no document can share two of the query's
    queries = [TermQuery(tuple(ranked[:AND_TERMS]), any_of=False)]
    if len(ranked) > MIN_SHARED:
        queries.append(TermQuery(tuple(ranked[:MIN_SHARED]), any_of=False))
    return queries
