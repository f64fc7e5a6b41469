"""The demo's story end to end through real mail, with `run.py run` as a separate process:
Dovecot in, aiosmtpd out, SQLite in between; technicians authenticated by signed Reply-To."""

from __future__ import annotations

import time

from daemon.demo.story import PRINTER
from tests.acceptance.story import (
    EVENTS,
    MAILS,
    SECRET,
    got,
    mail_for,
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


HELPDESK = ("sam.rivera@example.com", "priya.natarajan@example.com")
TIER1 = ("alex.chen@example.com", "jordan.blake@example.com")


def test_a_request_no_rule_routes_reaches_the_helpdesk_who_routes_it(site: Site) -> None:
    """The demo's printer ticket, up to tier 1 (its escalation needs hours on the clock)."""
    daemon = site.start(TIERDESK_AUTH_SECRET=SECRET)
    report, route = PRINTER[:2]
    site.append(mail_for(report, site))
    notice = "[TD-1] New ticket, P3: Cannot print to the 3rd-floor printer"
    wait(lambda: all(got(site, member, notice) for member in HELPDESK),
         "the new-ticket notice, to each helpdesk member")
    site.append(mail_for(route, site))  # Sam's #route tier1, to his signed Reply-To
    handoff = "[TD-1] P3 handed to Tier 1 Support: Cannot print"
    wait(lambda: all(got(site, member, handoff) for member in TIER1), "tier 1's handoff")
    wait(lambda: outbox_drained(site), "every queued mail sent")
    assert daemon.stop() == 0
    shot = snapshot(site)
    assert shot.tickets == [("TD-1", "tier1", "P3")]
    assert [e[1:] for e in shot.events if e[0] == "transition"] == [
        ("triage", "tier1", "sam.rivera@example.com")]
    assert not {"security", "refused"} & {e[0] for e in shot.events}
    daemon.no_traceback()
