"""Run by test_crash.py in a subprocess: one drain of the support mailbox, configured like the
daemon (a config folder plus TIERDESK_* variables), so the test can SIGKILL it at chosen moments.

    python tests/ingest/crash_ingest.py CONFIG_DIR

Test hooks live in this script only (production code has none). drain() opens one write
transaction per fetched batch, so the database handed to it counts them. From the environment:
- TIERDESK_TEST_BATCH_SIZE: mails per batch (default 100).
- TIERDESK_TEST_PAUSE_AT_BATCH=N: before batch N's transaction (1-based), the batch fetched
  but nothing of it written, print "fetched N" and sleep: the window between fetch and commit.
- TIERDESK_TEST_PAUSE_AFTER_BATCH=N: once batch N's transaction committed, before its mails
  are flagged on the server, print "committed N" and sleep.
- TIERDESK_TEST_BATCH_DELAY=S: sleep S seconds inside every batch's transaction, before its
  commit, so a kill at a random moment often lands mid-transaction.

Prints "connected" once logged in to IMAP, and "done <summary>" when the drain completed.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from daemon.app import Parts
from daemon.cli_store import open_and_migrate
from daemon.config import load_config
from daemon.imap import Mailbox
from daemon.ingest_loop import drain
from daemon.store.database import Database

PAUSE_S = 3600.0


@dataclass(frozen=True)
class HookedDatabase(Database):
    """The same database; its write transactions pause or linger as the test asked."""

    pause_at: int | None = None
    pause_after: int | None = None
    delay: float = 0.0
    calls: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def wrap(cls, database: Database, environ: Mapping[str, str]) -> HookedDatabase:
        own = {f.name: getattr(database, f.name) for f in fields(Database)}
        return cls(**own, pause_at=_number(environ.get("TIERDESK_TEST_PAUSE_AT_BATCH")),
                   pause_after=_number(environ.get("TIERDESK_TEST_PAUSE_AFTER_BATCH")),
                   delay=float(environ.get("TIERDESK_TEST_BATCH_DELAY", "0")))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        batch = next(self.calls)
        if batch == self.pause_at:
            print(f"fetched {batch}", flush=True)
            time.sleep(PAUSE_S)
        with super().transaction() as session:
            yield session
            time.sleep(self.delay)
        if batch == self.pause_after:
            print(f"committed {batch}", flush=True)
            time.sleep(PAUSE_S)


def _number(text: str | None) -> int | None:
    return int(text) if text else None


def main(root: Path) -> None:
    config = load_config(root, os.environ)
    database = open_and_migrate(config.settings.database.url)
    hooked = HookedDatabase.wrap(database, os.environ)
    parts = Parts.build(config, hooked)
    mailbox = Mailbox(config.settings.imap,
                      batch_size=int(os.environ.get("TIERDESK_TEST_BATCH_SIZE", "100")))
    try:
        mailbox.connect()
        print("connected", flush=True)
        report = drain(mailbox, hooked, parts.inbox, lambda: datetime.now(UTC))
    finally:
        mailbox.close()
        database.close()
    print(f"done {report.summary()}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
