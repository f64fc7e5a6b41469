"""Correlation order: headers, then subject tag, then plus-address; unknown refs ignored."""

from __future__ import annotations

import pytest

from daemon.mail.correlate import NO_MATCH, correlate, refs_to_check
from daemon.mail.thread_keys import PlusRef, ThreadKeys

KEYS = ThreadKeys(message_ids=("b@x", "a@x"), subject_refs=("TD-2",),
                  plus_refs=(PlusRef("TD-3", None, "support+TD-3@example.com"),))

CASES = [
    ("newest header wins", {"a@x": "TD-1", "b@x": "TD-9"}, {"TD-2", "TD-3"}, "TD-9"),
    ("older header", {"a@x": "TD-1"}, {"TD-2", "TD-3"}, "TD-1"),
    ("subject tag next", {}, {"TD-2", "TD-3"}, "TD-2"),
    ("plus-address last", {}, {"TD-3"}, "TD-3"),
    ("tags naming no ticket are ignored", {}, set(), None),
]


@pytest.mark.parametrize(("what", "known", "existing", "ref"), CASES, ids=[c[0] for c in CASES])
def test_order(what: str, known: dict[str, str], existing: set[str], ref: str | None) -> None:
    assert correlate(KEYS, known, existing).ref == ref


def test_how_is_explained() -> None:
    assert correlate(KEYS, {}, {"TD-3"}).how == "sent to support+TD-3@example.com"
    assert correlate(ThreadKeys((), (), ()), {}, set()) == NO_MATCH


def test_refs_to_check_dedups_in_order() -> None:
    keys = ThreadKeys((), ("TD-2", "TD-3"), (PlusRef("TD-3", "tok", "a@b"),))
    assert refs_to_check(keys) == ("TD-2", "TD-3")


def test_our_thread_root_names_the_ticket_before_the_subject() -> None:
    keys = ThreadKeys(message_ids=("other@x", "td-7.ticket@example.com"),
                      subject_refs=("TD-2",), plus_refs=())
    assert refs_to_check(keys) == ("TD-7", "TD-2")
    match = correlate(keys, {}, {"TD-7", "TD-2"})
    assert (match.ref, match.how) == ("TD-7", "references the thread of TD-7")
    assert correlate(keys, {}, {"TD-2"}).ref == "TD-2"  # a root naming no ticket is ignored
