"""Run by test_crash.py in a subprocess: one drain of the support mailbox, configured like the
daemon (a config folder plus TIERDESK_* variables), so the test can SIGKILL it at chosen moments.

    python tests/inbound/ingest/crash_ingest.py CONFIG_DIR

Test hooks live in this script only (production code has none): drain() processes each
fetched batch with one process_batch() call inside that batch's write transaction, so the
hooks wrap that call and count the batches. From the environment:
- TIERDESK_TEST_BATCH_SIZE: mails per batch (default 100).
- TIERDESK_TEST_PAUSE_AT_BATCH=N: in batch N's transaction (1-based), the batch fetched
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from daemon.inbound import ingest_loop
from daemon.inbound.imap import Mailbox
from daemon.service.app import Parts
from daemon.site.config import load_config
from daemon.store.database import open_and_migrate

PAUSE_S = 3600.0


@dataclass
class Hooks:
    """Wraps process_batch: pauses or lingers in the batches the test asked for."""

    pause_at: int | None = None
    pause_after: int | None = None
    delay: float = 0.0
    calls: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    current: int = 0  # the batch processed last

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Hooks:
        return cls(pause_at=_number(environ.get("TIERDESK_TEST_PAUSE_AT_BATCH")),
                   pause_after=_number(environ.get("TIERDESK_TEST_PAUSE_AFTER_BATCH")),
                   delay=float(environ.get("TIERDESK_TEST_BATCH_DELAY", "0")))

    def wrap(self, process: Callable[..., Any]) -> Callable[..., Any]:
        def hooked(session: Session, *args: Any, **kwargs: Any) -> Any:
            batch = next(self.calls)
            if batch == self.pause_at:
                print(f"fetched {batch}", flush=True)
                time.sleep(PAUSE_S)
            self.current = batch
            result = process(session, *args, **kwargs)
            time.sleep(self.delay)
            return result
        return hooked

    def wrap_marking(self, mark: Callable[..., None]) -> Callable[..., None]:
        """drain() flags a batch's mails right after that batch's commit."""
        def hooked(mailbox: Mailbox, uids: Any) -> None:
            if self.current == self.pause_after:
                print(f"committed {self.current}", flush=True)
                time.sleep(PAUSE_S)
            mark(mailbox, uids)
        return hooked


def _number(text: str | None) -> int | None:
    return int(text) if text else None


def main(root: Path) -> None:
    config = load_config(root, os.environ)
    database = open_and_migrate(config.settings.database.url)
    hooks = Hooks.from_env(os.environ)
    ingest_loop.process_batch = hooks.wrap(ingest_loop.process_batch)
    Mailbox.mark_processed = hooks.wrap_marking(Mailbox.mark_processed)  # type: ignore[method-assign]
    parts = Parts.build(config, database)
    mailbox = Mailbox(config.settings.imap,
                      batch_size=int(os.environ.get("TIERDESK_TEST_BATCH_SIZE", "100")))
    try:
        mailbox.connect()
        print("connected", flush=True)
        report = ingest_loop.drain(mailbox, database, parts.inbox, lambda: datetime.now(UTC))
    finally:
        mailbox.close()
        database.close()
    print(f"done {report.summary()}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
