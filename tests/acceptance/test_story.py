"""The demo's story end to end through real mail, with `run.py run` as a separate process:
Dovecot in, aiosmtpd out, SQLite in between; technicians authenticated by signed Reply-To."""

from __future__ import annotations

import time

from tests.acceptance.story import (
    DANA,
    MORGAN,
    ROBIN,
    SECRET,
    VPNCO,
    play,
    resolution_notice,
    snapshot,
    subjects,
)
from tests.service.conftest import Site

MOVES = [
    ("transition", "triage", "tier2", "triage"),
    ("transition", "tier2", "tier3", MORGAN),
    ("transition", "tier3", "vendor", ROBIN),
    ("transition", "vendor", "tier3", "vendor"),
    ("transition", "tier3", "resolved", ROBIN),
]


def test_the_story_through_real_mail_ends_resolved(site: Site) -> None:
    started = time.monotonic()
    daemon = site.start(TIERDESK_AUTH_SECRET=SECRET)
    play(site)
    assert daemon.stop() == 0
    shot = snapshot(site)
    assert shot.tickets == [("TD-1", "resolved", "P1")]
    assert [e for e in shot.events if e[0] == "transition"] == MOVES
    kinds = [e[0] for e in shot.events]
    assert "vendor_reply" in kinds and "reply" in kinds
    assert "security" not in kinds and "refused" not in kinds
    mails = subjects(site)
    for rcpt, subject in [
        (DANA, "[TD-1] VPN down for the whole sales team"),  # the acknowledgement
        (MORGAN, "[TD-1] P1 handed to Tier 2 Systems: VPN down"),
        (ROBIN, "[TD-1] P1 handed to Tier 3 Engineering: VPN down"),
        (VPNCO, "[TD-1] Support request: VPN down"),  # the vendor handoff
        (ROBIN, "[TD-1] VPNCo Support replied: VPN down"),
    ]:
        assert any(r == rcpt and s.startswith(subject) for r, s in mails), (rcpt, subject, mails)
    assert len(resolution_notice(site)) == 1
    assert all(r.status == "sent" for r in site.outbox())
    daemon.no_traceback()
    assert time.monotonic() - started < 30
