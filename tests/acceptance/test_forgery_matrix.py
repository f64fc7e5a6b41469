"""The forged-command matrix (tests/acceptance/forgery_matrix.py) on SQLite and PostgreSQL:
every forged case refused and recorded, every genuine one accepted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from daemon.inbound.ingest import Inbox
from daemon.store.database import Database
from tests.acceptance.forgery_matrix import CASES, Case, Desk, dns_stub
from tests.inbound.commands.dns_stub import StubDns


@pytest.fixture(scope="module")
def dns() -> Iterator[StubDns]:
    server = dns_stub()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def inboxes() -> dict[tuple[tuple[str, str], ...], Inbox]:
    return {}  # built once per settings a case asks for, shared by the cases


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, database: Database, dns: StubDns,
              inboxes: dict[tuple[tuple[str, str], ...], Inbox]) -> None:
    seen = case.play(Desk(database, dns, inboxes))
    assert case.passed(seen), seen


def test_the_matrix_covers_the_issue() -> None:
    """Each kind of attack issue 16 names is in the matrix, and each genuine way."""
    names = " ".join(c.name for c in CASES)
    for words in ("shipped settings", "untrusted authserv-id", "below an untrusted",
                  "quoted history", "display:none", "zero font", "another member's token",
                  "another ticket's token", "past its last day", "retired key",
                  "another domain", "altered after signing", "l= DKIM", "encoded address",
                  "fifty forged", "autoresponder", "genuine: a signed reply address",
                  "genuine: a DKIM signature aligned", "genuine: a trusted Authentication"):
        assert words in names, words
