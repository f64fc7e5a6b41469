"""Incident links in the store (issue 19), on SQLite and PostgreSQL: a decision's `parent` is
written as tickets.parent_id, read back into the facts, listed at once for `tickets`, and an
incident's reports are found even before a flush; `#link` drops the target timers too."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.store import repository as repo
from daemon.store.deferred import deferred
from daemon.store.models import Ticket, Timer
from daemon.workflow.facts import Decision, TimerOrder
from tests.store.test_repository import DOMAIN, load, new_ticket


def linked(session: Session, child: Ticket, parent: Ticket | None, now: datetime) -> None:
    facts = replace(repo.facts(child), parent=parent.ref if parent else None)
    repo.apply_decision(session, child, Decision(facts), now, domain=DOMAIN)


def test_parent_written_and_read_back(session: Session, now: datetime) -> None:
    incident, report, other = (new_ticket(session, now, f"s{n}") for n in range(3))
    linked(session, report, incident, now)
    session.commit()
    session.expire_all()
    facts = repo.facts(load(session, report.ref))
    assert (facts.parent, facts.parent_team) == (incident.ref, "helpdesk")
    assert repo.facts(load(session, other.ref)).parent is None
    assert [t.ref for t in repo.children_of(session, incident, for_update=True)] == [report.ref]
    assert repo.incident_links(session) == ({report.id: incident.ref},
                                            {incident.id: [report.ref]})
    summary = repo.ticket_summary(report, incident.ref)
    assert (summary["parent"], summary["children"]) == (incident.ref, [])
    linked(session, report, None, now)  # #unlink
    session.commit()
    assert load(session, report.ref).parent_id is None
    assert repo.children_of(session, incident) == []


def test_unknown_parent_is_an_error(session: Session, now: datetime) -> None:
    report = new_ticket(session, now)
    facts = replace(repo.facts(report), parent="TD-999")
    with pytest.raises(ValueError, match="no such ticket"):
        repo.apply_decision(session, report, Decision(facts), now, domain=DOMAIN)


def test_reports_linked_in_this_transaction_count_before_a_flush(session: Session,
                                                                  now: datetime) -> None:
    incident, first, second = (new_ticket(session, now, f"s{n}") for n in range(3))
    session.commit()
    with session.no_autoflush:
        for report in (first, second):
            facts = replace(repo.facts(report), parent=incident.ref)
            repo.apply_decision(session, report, Decision(facts), now, domain=DOMAIN,
                                flush=False)
        assert [t.ref for t in repo.children_of(session, incident)] == [first.ref, second.ref]
        linked_again = replace(repo.facts(second), parent=None)
        repo.apply_decision(session, second, Decision(linked_again), now, domain=DOMAIN,
                            flush=False)
        assert [t.ref for t in repo.children_of(session, incident)] == [first.ref]


def test_link_cancels_the_target_timers_too(session: Session, now: datetime) -> None:
    report = new_ticket(session, now)
    repo.add_timers(session, report, [TimerOrder("expire", "triage", now + timedelta(hours=1)),
                                      TimerOrder("resolve", "", now + timedelta(hours=40))])
    session.commit()
    repo.apply_decision(session, report, Decision(repo.facts(report), cancel_timers=True),
                        now, domain=DOMAIN)
    assert [t.kind for t in session.scalars(select(Timer))] == ["resolve"]
    repo.apply_decision(session, report, Decision(repo.facts(report), cancel_targets=True),
                        now, domain=DOMAIN)
    assert list(session.scalars(select(Timer))) == []


def test_deferred_cancel_of_targets(session: Session, now: datetime) -> None:
    report = new_ticket(session, now)
    session.commit()
    with session.no_autoflush, deferred(session) as held:
        repo.add_timers(session, report, [TimerOrder("respond", "", now),
                                          TimerOrder("warn", "triage", now)])
        repo.cancel_timers(session, report, targets=True)
        assert held.timers == []
