"""Commands only from senders we can authenticate, on real stores: forged From, untrusted
and forged Authentication-Results, signed reply addresses valid, tampered and misused. A
refused mail runs nothing, passes nothing on, leaves a security event, and the member's
real directory address is told."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from daemon.auth.sender_auth import key_id
from daemon.inbound.ingest import Inbox
from daemon.site.config import load_config
from daemon.store.database import Database
from tests.inbound.commands.desk import (
    DMARC,
    JBLAKE,
    JORDAN,
    MORGAN,
    ROBIN,
    ROOT,
    SECRET,
    TRUSTED,
    build_inbox,
    config,
    events,
    feed,
    last_id,
    later,
    mail,
    open_in,
    outbox,
    receipts,
    signed,
    tech,
    ticket,
)

ORDER = "#resolve nothing was wrong\nHi Ann, all done."


def assert_refused(database: Database, since: int, member: str, *why: str) -> None:
    """Nothing ran, nothing went to the requester; one notice to the member's real address."""
    after = ticket(database)
    assert (after.state, after.assignee) == ("tier2", None)
    sent = outbox(database, since)
    assert [(s.template, s.to, s.role) for s in sent] == [("command_refused", member, "member")]
    notice = sent[0]
    assert "Nothing in it was carried out" in notice.text and "#resolve" in notice.text
    assert "all done" not in notice.everything  # the forged text is never echoed
    [security] = events(database, "security")
    assert security.data["commands"] == ["#resolve"] and security.data["internal"] is True
    assert security.actor == "security"  # the member did not act
    assert security.data["claimed"] in (member, JBLAKE)
    for words in why:
        assert words in security.reason and words in notice.text
    # Ann's mail opened it; the forged one left its mail_in line and the security event only.
    assert [e.kind for e in events(database)] == ["mail_in", "created", "mail_in", "security"]


def test_forged_from_without_authentication(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    since = last_id(database)
    outcome = feed(database, inbox, tech(MORGAN, ORDER, auth=None), later(5))
    assert outcome.detail.startswith("refused: not authenticated as morgan.lee@example.com")
    assert_refused(database, since, MORGAN, "no Authentication-Results header from our mail "
                   "server (mx.example.com)", "not sent to your signed reply address")


def test_notice_goes_to_the_members_first_address(database: Database, inbox: Inbox) -> None:
    """Forged from a member's second address: the notice goes to their first one."""
    open_in(database, inbox, "tier2")
    since = last_id(database)
    feed(database, inbox, tech(JBLAKE, ORDER, auth=None), later(5))
    assert_refused(database, since, JORDAN)


@pytest.mark.parametrize("auth", [
    "mx.google.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com",
    "MX.EXAMPLE.COM.evil.example; dmarc=pass header.from=example.com",
])
def test_valid_results_from_an_untrusted_authserv_id(database: Database, inbox: Inbox,
                                                     auth: str) -> None:
    open_in(database, inbox, "tier2")
    since = last_id(database)
    feed(database, inbox, tech(MORGAN, ORDER, auth=auth), later(5))
    assert_refused(database, since, MORGAN, "not from our mail server (mx.example.com)")


def test_a_forged_header_of_ours_below_a_foreign_one(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    since = last_id(database)
    feed(database, inbox, tech(MORGAN, ORDER, auth=("mx.relay.example; none", DMARC)), later(5))
    assert_refused(database, since, MORGAN, "topmost Authentication-Results header is from "
                   "mx.relay.example")


@pytest.mark.parametrize(("auth", "why"), [
    ("mx.example.com; dmarc=fail header.from=example.com; dkim=none",
     "found no aligned dmarc or dkim pass for example.com (dmarc=fail (example.com), "
     "dkim=none)"),
    ("mx.example.com; dkim=pass header.d=evil.example", "dkim=pass (evil.example)"),
    ("mx.example.com; spf=pass smtp.mailfrom=morgan.lee@example.com", "no dmarc or dkim result"),
])
def test_our_server_saw_no_aligned_pass(database: Database, inbox: Inbox, auth: str,
                                        why: str) -> None:
    open_in(database, inbox, "tier2")
    since = last_id(database)
    feed(database, inbox, tech(MORGAN, ORDER, auth=auth), later(5))
    assert_refused(database, since, MORGAN, why)


def test_dkim_alone_aligned_is_enough(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    auth = "mx.example.com (Postfix); dkim=pass (2048-bit key) header.d=example.com"
    outcome = feed(database, inbox, tech(MORGAN, "#take", auth=auth), later(5))
    assert "dkim=pass for example.com by mx.example.com" in outcome.detail
    assert ticket(database).assignee == MORGAN


# ------------------------------------------------------------------ signed reply addresses

def test_a_valid_signed_reply_address_is_accepted(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    raw = tech(MORGAN, "#take\n#priority P2", auth=None, to=signed(MORGAN))
    outcome = feed(database, inbox, raw, later(5))
    assert "(signed reply address for TD-1): 2 done" in outcome.detail
    assert (ticket(database).assignee, ticket(database).priority) == (MORGAN, "P2")
    assert events(database, "security") == []


def test_the_signed_address_alone_threads_the_mail(database: Database, inbox: Inbox) -> None:
    """No subject tag, no In-Reply-To: the plus-address finds the ticket, the token the
    member. Mail servers may lower-case the address."""
    open_in(database, inbox, "tier2")
    raw = mail(MORGAN, "printer", "#take", to=signed(MORGAN).lower())
    outcome = feed(database, inbox, raw, later(5))
    assert (outcome.action, outcome.ref) == ("updated", "TD-1")
    assert ticket(database).assignee == MORGAN


def flip(address: str) -> str:
    local, _, domain = address.partition("@")
    last = local[-1]
    return f"{local[:-1]}{'a' if last != 'a' else 'b'}@{domain}"


INVALID = "is not valid for TD-1 and morgan.lee@example.com"
assert key_id("x" * 40) != key_id(SECRET)
TAMPERED: dict[str, tuple[Callable[[], str], str]] = {
    "one character changed": (lambda: flip(signed(MORGAN)), INVALID),
    "another member's token": (lambda: signed(ROBIN), INVALID),
    # Another key id: a key we do not hold (the two secrets' ids differ; asserted below).
    "signed with another secret": (lambda: signed(MORGAN, secret="x" * 40),
                                   "signed with a key this site no longer holds"),
    "token cut short": (lambda: signed(MORGAN).split("@")[0][:-5] + "@example.com", INVALID),
    # The mail threads to TD-1 by its subject; a TD-2 token says nothing about TD-1.
    "another ticket's token": (lambda: signed(MORGAN, "TD-2"),
                               "not sent to your signed reply address"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_token_is_refused(database: Database, inbox: Inbox, case: str) -> None:
    address, why = TAMPERED[case]
    open_in(database, inbox, "tier2")
    since = last_id(database)
    feed(database, inbox, tech(MORGAN, ORDER, auth=None, to=address()), later(5))
    assert_refused(database, since, MORGAN, why)


def test_tokens_need_the_secret(database: Database) -> None:
    """A site without a secret hands out no signed addresses and accepts none."""
    bare = build_inbox(config(secret=""))
    open_in(database, bare, "tier2")
    since = last_id(database)
    feed(database, bare, tech(MORGAN, ORDER, auth=None, to=signed(MORGAN)), later(5))
    assert_refused(database, since, MORGAN, "signed reply addresses are not configured")


# ------------------------------------------------------------------ what members get

def test_handoffs_go_to_each_member_with_their_own_signed_reply_to(database: Database,
                                                                   inbox: Inbox) -> None:
    since = last_id(database)
    feed(database, inbox, mail("ann@example.org", "VPN down for the whole sales team", "Help"))
    handoffs = [s for s in outbox(database, since) if s.template == "escalation_handoff"]
    assert sorted((h.to, h.reply_to) for h in handoffs) == sorted([
        (MORGAN, f"IT Support <{signed(MORGAN)}>"),
        ("taylor.brooks@example.com", f"IT Support <{signed('taylor.brooks@example.com')}>")])
    [ack] = [s for s in outbox(database, since) if s.template == "acknowledgement"]
    assert ack.reply_to == "IT Support <support+TD-1@example.com>"  # the requester: unsigned


def test_a_reply_to_the_handoff_authenticates_the_member(database: Database,
                                                         inbox: Inbox) -> None:
    feed(database, inbox, mail("ann@example.org", "VPN down for the whole sales team", "Help"))
    [handoff] = [s for s in outbox(database) if s.to == MORGAN]
    reply_to = handoff.reply_to.split("<")[1].rstrip(">")
    raw = mail(MORGAN, f"Re: {handoff.subject}", "#take\n#wait Which VPN client version?",
               to=reply_to)
    since = last_id(database)
    assert "2 done" in feed(database, inbox, raw, later(5)).detail
    assert ticket(database).state == "waiting_on_customer"
    [receipt] = receipts(outbox(database, since))
    assert receipt.reply_to == handoff.reply_to  # the receipt carries it again


# ------------------------------------------------------------------ expiry and rotation

def test_a_signed_address_stops_working_14_days_after_the_ticket_was_resolved(
        database: Database, inbox: Inbox) -> None:
    """Through resolve it still works (a member may reopen), then it acts for no one."""
    open_in(database, inbox, "resolved", state_entered_at=later(10))
    note = "#note still watching the printer"
    feed(database, inbox, tech(MORGAN, note, auth=None, to=signed(MORGAN)),
         later(10) + timedelta(days=13))
    assert events(database, "security") == []
    since = last_id(database)
    feed(database, inbox, tech(MORGAN, ORDER + "\n#reopen", auth=None, to=signed(MORGAN)),
         later(10) + timedelta(days=15))
    sent = outbox(database, since)
    assert [(s.template, s.to) for s in sent] == [("command_refused", MORGAN)]
    assert "stopped working on 2026-03-16, 14 days after TD-1 was resolved" in sent[0].text
    assert "reply to a newer mail" in sent[0].text
    [security] = events(database, "security")
    assert security.data["token"] == "expired" and ticket(database).state == "resolved"


def test_an_address_past_its_last_day_is_refused_on_an_open_ticket(
        database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    since = last_id(database)
    feed(database, inbox, tech(MORGAN, ORDER, auth=None, to=signed(MORGAN)),
         later(0) + timedelta(days=91))
    assert_refused(database, since, MORGAN, "expired on 2026-05-31")
    assert events(database, "security")[0].data["token"] == "expired"


def test_a_rotated_secret_keeps_old_addresses_until_it_is_retired(database: Database) -> None:
    new = "n" * 40
    rotated = load_config(ROOT, {**TRUSTED, "TIERDESK_AUTH_SECRET": new,
                                 "TIERDESK_AUTH_PREVIOUS_SECRETS": SECRET})
    inbox = build_inbox(rotated)
    open_in(database, inbox, "tier2")
    assert "1 done" in feed(database, inbox, tech(MORGAN, "#take", auth=None,
                                                  to=signed(MORGAN)), later(5)).detail
    retired = build_inbox(load_config(ROOT, {**TRUSTED, "TIERDESK_AUTH_SECRET": new}))
    since = last_id(database)
    feed(database, retired, tech(MORGAN, ORDER, auth=None, to=signed(MORGAN)), later(6))
    [notice] = outbox(database, since)
    assert notice.template == "command_refused" and "no longer holds" in notice.text
    assert events(database, "security")[0].data["token"] == "retired"
