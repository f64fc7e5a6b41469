"""A forged `#resolve` is refused: the ticket stays where it is and the refusal is recorded."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace

import pytest

from daemon.demo.story import OUTAGE
from tests.acceptance.story import SECRET, mail_for, play, snapshot, state, subjects, wait
from tests.service.conftest import Site

FORGED = replace(OUTAGE[4], text="#resolve Nothing to see here.")  # Robin's #resolve


def _forge(raw: bytes, **headers: str) -> bytes:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for name, value in headers.items():
        del msg[name]
        msg[name] = value
    return msg.as_bytes()


@pytest.mark.parametrize("forgery", ["plain-address", "outsider"])
def test_a_forged_resolve_is_refused(site: Site, forgery: str) -> None:
    daemon = site.start(TIERDESK_AUTH_SECRET=SECRET)
    play(site, range(4))  # up to the vendor's answer: the ticket is back with tier 3
    assert state(site) == "tier3"
    before = snapshot(site)
    genuine = mail_for(FORGED, site)  # Robin answering his own mail, to his signed address
    if forgery == "plain-address":  # Robin's From, but not his signed reply address
        forged = _forge(genuine, To="support@example.com")
    else:  # someone else, even at Robin's signed address
        forged = _forge(genuine, From="Mallory <mallory@example.net>")
    site.append(forged)
    if forgery == "plain-address":
        # A member's mail that is not authenticated: refused, recorded as a security event.
        wait(lambda: any(e[0] == "security" for e in snapshot(site).events[len(before.events):]),
             "a security event for the forgery")
    else:
        # Not a directory member: no command at all, the mail is only recorded on the ticket.
        wait(lambda: ("mail_in", "tier3", "tier3", "mallory@example.net")
             in snapshot(site).events[len(before.events):], "the outsider's mail recorded")
        daemon.wait_for(lambda m: m == "updated TD-1: reply from mallory@example.net recorded")
    new = snapshot(site).events[len(before.events):]
    assert not any(e[0] == "transition" for e in new), new
    assert daemon.stop() == 0
    assert snapshot(site).tickets == [("TD-1", "tier3", "P1")]
    assert not any("#resolve" in s for _, s in subjects(site))  # no "Done: #resolve"
    daemon.no_traceback()
