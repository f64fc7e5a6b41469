"""`run.py run` on PostgreSQL when the database goes away under it and comes back: the
connection to the real server runs through a link the test cuts (open connections reset,
new ones refused). The daemon must say so once, keep running, and process what arrived
meanwhile once the database is back: nothing lost, nothing twice."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from tests.databases import PgSchemas
from tests.inbound.ingest.mails import mail
from tests.outbound.smtp_server import wait_until
from tests.service.conftest import Site
from tests.service.tcp_cut import tcp_cut


@pytest.mark.postgres
def test_database_cut_off_and_back_loses_nothing(site: Site, pg_schemas: PgSchemas,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    direct = make_url(pg_schemas.create())  # a fresh schema: the daemon migrates it
    with tcp_cut(direct.host or "127.0.0.1", direct.port or 5432) as link:
        through = direct.set(host="127.0.0.1", port=link.port)
        monkeypatch.setenv("TIERDESK_DATABASE_URL", through.render_as_string(False))
        site.database_url = direct.render_as_string(False)  # the test reads past the link
        daemon = site.start()
        # The database goes while the acknowledgement is on the wire: the SMTP server has
        # it, the daemon cannot record that it went.
        handed_over, accept = site.smtp.handler.hold_next()
        site.append(mail(message_id="<one@example.org>"))
        assert handed_over.wait(20)
        link.cut()
        accept.set()
        daemon.wait_for(lambda m: m.startswith("database unavailable:"), timeout=30)
        site.append(mail(subject="Second problem", message_id="<two@example.org>"))
        assert len(site.tickets()) == 1  # the new mail waits in the mailbox, not in memory
        link.restore()
        # Both acknowledgements (each ticket's new-ticket notice goes to the helpdesk).
        wait_until(lambda: len([r for r in site.smtp.received
                                if r.rcpt_tos == ("ann@example.org",)]) == 2, timeout=60)
        daemon.wait_for(lambda m: m.startswith("database available again after"), timeout=30)
        assert daemon.stop() == 0
    assert [t.ref for t in site.tickets()] == ["TD-1", "TD-2"]
    # Both recorded as sent once: a row left `sending` would go out again after its lease.
    acks = [(r.status, r.attempts) for r in site.outbox() if r.template == "acknowledgement"]
    assert acks == [("sent", 1), ("sent", 1)]
    assert len([m for m in daemon.messages() if m.startswith("database unavailable")]) == 1
    daemon.no_traceback()
