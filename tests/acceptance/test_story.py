"""The demo's story end to end through real mail, with `run.py run` as a separate process:
Dovecot in, aiosmtpd out, SQLite in between; technicians authenticated by signed Reply-To."""

from __future__ import annotations

import time

from tests.acceptance.story import (
    EVENTS,
    MAILS,
    SECRET,
    outbox_drained,
    play,
    resolution_notice,
    snapshot,
    subjects,
    wait,
)
from tests.service.conftest import Site


def test_the_story_through_real_mail_ends_resolved(site: Site) -> None:
    started = time.monotonic()
    daemon = site.start(TIERDESK_AUTH_SECRET=SECRET)
    play(site)
    wait(lambda: outbox_drained(site), "every queued mail sent")
    assert daemon.stop() == 0
    shot = snapshot(site)
    assert shot.tickets == [("TD-1", "resolved", "P1")]  # the auto-close is days away
    assert shot.events == EVENTS  # the transitions, the vendor's reply, the thank-you
    kinds = {e[0] for e in shot.events}
    assert "security" not in kinds and "refused" not in kinds
    # Acknowledgement, handoffs, vendor handoff, the vendor's reply, the resolution notice.
    assert sorted(subjects(site)) == sorted(MAILS)
    assert len(resolution_notice(site)) == 1
    assert len({r.message_id for r in site.smtp.received}) == len(site.smtp.received)
    daemon.no_traceback()
    assert time.monotonic() - started < 30
