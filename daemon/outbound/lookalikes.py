"""What a mail about a ticket says of the tickets like it: possible duplicates opened shortly
before ("3 other reports in the last 20 min look alike: TD-4, TD-5, TD-7") and resolved ones
with how they were fixed ("TD-812, 12 Oct, fixed by Rosa Okafor: imported the intermediate
certificate again"). Searched in the store (daemon/store/search.py) when a template names
`lookalikes` or `past_fixes`; `tierdesk similar` prints the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy.orm import Session

from daemon.auth.directory import Directory
from daemon.config.settings import DuplicatesSettings
from daemon.store import search
from daemon.store.models import Ticket

# The template variables filled here (a template naming neither costs no search).
SIMILAR_KEYS = frozenset({"lookalikes", "past_fixes"})


@dataclass(frozen=True)
class Similar:
    lookalikes: list[search.Found]
    past_fixes: list[search.Found]


def find_similar(session: Session, ticket: Ticket, settings: DuplicatesSettings,
                 windows: search.Windows | None = None) -> Similar:
    """The ticket's look-alikes (opened within the window before it) and past fixes;
    `windows` shares one read of the window among the tickets of a batch."""
    since = ticket.created_at - settings.window
    windows = windows or search.Windows()
    if settings.max > 0:
        windows.load(session, since)  # the read look-alikes need holds the new ticket too
    # Its report from that read when it is there (a new ticket's is): one query less.
    report = windows.report(ticket.id) or search.report_of(session, ticket.id)
    if report is None:  # stored before indexing began and not backfilled: nothing to compare
        return Similar([], [])
    alike = search.lookalikes(session, ticket.id, report, since=since,
                              limit=settings.max, threshold=settings.similarity,
                              windows=windows)
    fixes = search.past_fixes(session, report, limit=settings.past_fixes,
                              threshold=settings.similarity, ticket_id=ticket.id)
    return Similar(alike, fixes)


def similar_context(similar: Similar, directory: Directory, zone: tzinfo,
                    now: datetime) -> dict[str, Any]:
    """`lookalikes` (None when there are none) and `past_fixes` for a template."""
    return {"lookalikes": lookalikes_context(similar.lookalikes, zone, now),
            "past_fixes": [fix_context(fix, directory, zone, now) for fix in similar.past_fixes]}


def lookalikes_context(found: list[search.Found], zone: tzinfo,
                       now: datetime) -> dict[str, Any] | None:
    if not found:
        return None
    # Oldest first: the first report is the likely parent to `#link` the others to.
    tickets = sorted(found, key=lambda item: (item.opened_at, item.ref))
    refs = [item.ref for item in tickets]
    return {
        "count": len(tickets), "refs": refs, "link": refs[0],
        "span": span(now - tickets[0].opened_at),
        "tickets": [{"ref": item.ref, "subject": item.subject, "state": item.state,
                     "at": item.opened_at.astimezone(zone)} for item in tickets],
    }


def fix_context(fix: search.Found, directory: Directory | None, zone: tzinfo,
                now: datetime) -> dict[str, Any]:
    """One past fix; the fixer by their directory name (by address without a directory)."""
    by = fix.resolved_by or ""
    member = directory.member_by_address(by) if by and directory is not None else None
    name = member[1].name if member else by
    date = short_date(fix.resolved_at or fix.opened_at, zone, now)
    summary = fix.resolution or ""
    fixed_by = f", fixed by {name}" if name else ""
    return {"ref": fix.ref, "subject": fix.subject, "date": date, "fixed_by": name,
            "fixed_by_address": by, "summary": summary,
            "line": f"{fix.ref}, {date}{fixed_by}: {summary}"}


def short_date(moment: datetime, zone: tzinfo, now: datetime) -> str:
    """12 Oct; with the year when it is not this year's."""
    local = moment.astimezone(zone)
    text = f"{local.day} {local:%b}"
    return text if local.year == now.astimezone(zone).year else f"{text} {local.year}"


def span(delta: timedelta) -> str:
    """20 min, 2 h, 3 h 15 min: how far back the look-alikes go."""
    minutes = max(1, round(delta.total_seconds() / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h" if not rest else f"{hours} h {rest} min"
