"""Fixtures of the ingest tests that drain a real mailbox: the shipped config, the daemon's
wiring on the test's database, and connected Mailboxes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.inbound.imap import Mailbox
from daemon.service.app import Parts
from daemon.site.config import Config, load_config
from daemon.store.database import Database
from tests.inbound.imap.servers import Account, ImapTestServer, settings

ROOT = Path(__file__).resolve().parents[3]
Connect = Callable[..., Mailbox]


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(ROOT, {})


@pytest.fixture
def parts(config: Config, database: Database) -> Parts:
    """The daemon's own wiring: acknowledgements are rendered in the ingest transaction."""
    return Parts.build(config, database)


@pytest.fixture
def connect(imap_server: ImapTestServer, imap_account: Account) -> Iterator[Connect]:
    """connect(mailbox_class=Mailbox, batch_size=..., **settings) -> a connected Mailbox."""
    opened: list[Mailbox] = []

    def make(mailbox_class: type[Mailbox] = Mailbox, options: dict[str, Any] | None = None,
             **overrides: Any) -> Mailbox:
        box = mailbox_class(settings(imap_server, imap_account, **overrides), **(options or {}))
        opened.append(box)
        box.connect()
        return box

    yield make
    for box in opened:
        box.close()
