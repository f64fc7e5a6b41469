"""Issue 15: `run.py run` SIGKILLed in the middle of a burst of mail, twice, and started again
each time: every owed mail arrives, and a kill costs at most one duplicate per SMTP
connection (the mail each had in flight), not the mails of a batch."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from daemon.outbound.writer import MailWriter
from daemon.site.config import load_config
from daemon.store.database import Database
from tests.outbound.helpers import rows
from tests.outbound.smtp_server import wait_until
from tests.outbound.test_sender import fill
from tests.service.conftest import Site

BACKLOG = 400
CONNECTIONS = 4  # the daemon's pool (Sender.from_config)
QUEUED_AT = datetime(2000, 1, 1, tzinfo=UTC)  # due whatever the date the test runs on


@pytest.mark.parametrize("imap_server", ["embedded"], indirect=True)  # no mail comes in
def test_sigkill_mid_burst_resends_at_most_one_mail_per_connection(
        site: Site, database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # `database` is the site's SQLite file, or a PostgreSQL schema the daemon is pointed at.
    monkeypatch.setenv("TIERDESK_DATABASE_URL", database.url.render_as_string(False))
    fill(database, MailWriter.from_config(load_config(site.root, {})), QUEUED_AT, BACKLOG)
    site.smtp.handler.delay = 0.004  # a burst that lasts long enough to be cut
    for killed_after in (100, 250):
        daemon = site.start()
        assert len(site.smtp.wait_for(killed_after, timeout=30)) >= killed_after
        daemon.kill()  # SIGKILL: nothing recorded after this instant
        assert daemon.process.returncode == -9
        assert len(site.smtp.received) < BACKLOG  # killed mid-burst
    again = site.start()
    wait_until(lambda: {row.status for row in rows(database)} == {"sent"}, timeout=30)
    assert again.stop() == 0
    copies = Counter(r.message_id for r in site.smtp.received)
    assert len(copies) == BACKLOG  # every owed mail
    duplicates = sum(n - 1 for n in copies.values())
    print(f"{database.url.get_backend_name()}: {duplicates} duplicate(s) after 2 kills")
    assert duplicates <= 2 * CONNECTIONS, {mid: n for mid, n in copies.items() if n > 1}
    again.no_traceback()
