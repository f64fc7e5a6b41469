"""A From that names nobody for sure (several mailboxes, none, or one not read strictly):
the mail is stored and recorded on its ticket with the reason, runs no commands, is no
requester's reply, and no mail goes to anyone but the directory's members."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from daemon.inbound.ingest import Inbox
from daemon.store.database import Database
from daemon.store.models import Message, Outbox
from tests.inbound.commands.desk import (
    ALEX,
    REQUESTER,
    events,
    feed,
    last_id,
    later,
    open_in,
    put,
    requester_mail,
    rewrite,
    signed,
    tech,
    ticket,
)

# Read by the stdlib as alex.chen's (a member), and as the requester "_evil2@evil.test?=".
TWO_ANGLES = "=?utf-8?q?x_=0A?=<alex.chen@example.com> <attacker@evil.test>"
CRLF_NAME = "=?utf-8?q?Eve=0D=0ABcc:_evil2@evil.test?= <crlf3@customer.example>"
NOBODY = {
    "two angle addresses": (TWO_ANGLES, "2 addresses in angle brackets in one mailbox"),
    "encoded CR LF and ':'": (CRLF_NAME, "a group (':') that no ';' ends"),
    "two plain addresses": (f"{REQUESTER}, {ALEX}", "From holds 2 addresses"),
    "empty": ("", "From holds no address"),
}


def rows(database: Database, since: int = 0) -> list[Outbox]:
    with database.reading() as session:
        found = list(session.scalars(select(Outbox).where(Outbox.id > since)
                                     .order_by(Outbox.id)))
        session.expunge_all()
        return found


def members(inbox: Inbox) -> set[str]:
    directory = inbox.runtime.config.directory
    return {a.lower() for team in directory.teams.values() for m in team.members
            for a in m.addresses}


def test_two_addresses_in_from_run_no_command_in_a_members_name(database: Database,
                                                                 inbox: Inbox) -> None:
    """Alex's signed reply address and a DMARC pass for example.com: still nobody wrote."""
    open_in(database, inbox, "tier1")
    since, seen = last_id(database), len(events(database))
    raw = rewrite(tech(ALEX, "#take\n#resolve replaced the fuser", to=signed(ALEX)),
                  From=TWO_ANGLES)
    outcome = feed(database, inbox, raw, later(5))
    assert outcome.action == "updated" and outcome.detail.startswith("recorded only: From")
    after = ticket(database)
    assert (after.state, after.assignee) == ("tier1", None)
    assert rows(database, since) == []  # no receipt, no acknowledgement, no notice
    [arrival] = events(database)[seen:]
    assert (arrival.kind, arrival.actor) == ("mail_in", "unknown sender")
    assert "2 addresses in angle brackets" in arrival.reason
    assert "runs no commands" in arrival.reason and arrival.data["from_problem"]


@pytest.mark.parametrize("case", sorted(NOBODY))
def test_a_new_mail_from_nobody_opens_a_ticket_and_answers_nobody(database: Database,
                                                                  inbox: Inbox,
                                                                  case: str) -> None:
    sender, why = NOBODY[case]
    outcome = feed(database, inbox, rewrite(requester_mail(), From=sender))
    assert outcome.action == "opened" and outcome.detail.endswith(": no acknowledgement")
    opened = ticket(database)
    assert opened.requester == ""
    [arrival] = events(database, "mail_in")
    assert why in arrival.reason and why in arrival.data["from_problem"]
    sent = rows(database)
    assert {r.template for r in sent if r.to_role == "requester"} == {"acknowledgement"}
    for row in sent:
        if row.to_role == "requester":
            assert (row.status, row.last_error, row.body) == (
                "skipped", "requester: the ticket has no requester address", None)
        else:  # the team's notice of a new ticket, to its members
            assert row.recipients is not None and row.recipients.lower() in members(inbox)
    assert not any("evil" in (r.recipients or "") for r in sent)
    with database.reading() as session:
        assert session.scalars(select(Message.sender)).all() == [""]


def test_mail_from_nobody_is_no_reply_of_a_ticket_from_nobody(database: Database,
                                                              inbox: Inbox) -> None:
    """Both sides are "", which must not make them the same person."""
    feed(database, inbox, rewrite(requester_mail(), From=CRLF_NAME))
    put(database, state="waiting_on_customer", team="tier1")
    reply = rewrite(requester_mail("Re: [TD-1] Printer on floor 3 jams", body="Works now."),
                    From=f"{REQUESTER}, {ALEX}")
    since = last_id(database)
    outcome = feed(database, inbox, reply, later(5))
    assert outcome.action == "updated" and "recorded only" in outcome.detail
    assert ticket(database).state == "waiting_on_customer"
    assert rows(database, since) == []


def test_a_requester_reply_with_a_bad_from_moves_nothing(database: Database,
                                                         inbox: Inbox) -> None:
    open_in(database, inbox, "waiting_on_customer")
    since = last_id(database)
    reply = rewrite(requester_mail("Re: [TD-1] Printer on floor 3 jams", body="Works now."),
                    From=f"Ann <{REQUESTER}> <{ALEX}>")
    assert "recorded only" in feed(database, inbox, reply, later(5)).detail
    assert ticket(database).state == "waiting_on_customer"
    assert rows(database, since) == []
