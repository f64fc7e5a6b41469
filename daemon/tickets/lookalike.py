"""The open ticket a new report looks most like, for a triage rule's `looks_like_open`
(daemon/workflow/triage.py): searched at ingest, before the engine opens the ticket, and
only when the workflow has such a rule (the shipped one has it commented out).

The window and the measure are settings.duplicates' (window, and the score of
daemon/mail/similarity.py); the threshold is the rule's. A look-alike that is itself a report
of an incident stands for that incident: the new report joins the incident, not a chain.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session

from daemon.store import repository, search
from daemon.store.deferred import current as deferred_rows
from daemon.store.models import Ticket
from daemon.workflow.facts import Lookalike

CANDIDATES = 10  # the best few are enough: the first open one wins
WINDOW_CACHE = "tierdesk.lookalike.window"  # session.info: one read of the window per batch


def best_open(session: Session, ticket: Ticket, subject: str, body: str, *,
              window: timedelta, threshold: float,
              is_open: Callable[[Ticket], bool]) -> Lookalike | None:
    """The best-scoring ticket at or above `threshold` opened within `window` before
    `ticket` that is open (its incident open too), with the incident to join; else None."""
    report = search.report_text(subject, body)
    found = search.alike_ids(session, ticket.id, report, since=ticket.created_at - window,
                             limit=CANDIDATES, threshold=threshold, windows=_windows(session))
    for ticket_id, score in found:
        other = _ticket(session, ticket_id)
        if other is None or not is_open(other):
            continue  # resolved meanwhile (the window's read is the batch's first)
        incident = repository.parent_of(other) or other
        if incident is not other and not is_open(incident):
            continue
        return Lookalike(other.ref, score, repository.facts(_locked(session, incident)))
    return None


def _windows(session: Session) -> search.Windows:
    """One read of the window per fast-path batch: its own new tickets come from the
    deferred buffer (search.alike_ids). Without one (the careful pass writes each mail at
    once), each new ticket reads the window again, so it sees the ones before it."""
    buffer = deferred_rows(session)
    cached = session.info.get(WINDOW_CACHE)
    if buffer is not None and cached is not None and cached[0] is buffer:
        return cached[1]
    windows = search.Windows()
    if buffer is not None:
        session.info[WINDOW_CACHE] = (buffer, windows)
    return windows


def _ticket(session: Session, ticket_id: int) -> Ticket | None:
    buffer = deferred_rows(session)
    if buffer is not None and ticket_id in buffer.tickets:
        return buffer.tickets[ticket_id]
    with session.no_autoflush:
        return session.get(Ticket, ticket_id)


def _locked(session: Session, incident: Ticket) -> Ticket:
    """The incident's row locked until the commit (PostgreSQL), as `#link` locks it: its
    resolve, in another daemon, must see this report and take it along."""
    buffer = deferred_rows(session)
    if buffer is not None and incident.id in buffer.tickets:
        return incident  # not written yet: nobody else can see it
    with session.no_autoflush:
        return repository.get_ticket(session, incident.ref, for_update=True) or incident
