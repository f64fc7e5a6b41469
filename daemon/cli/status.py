"""`tierdesk status [--json] [--health]`: what an admin checks first, and a health check.

Reads the store (loop heartbeats, outbox, quarantine, tickets, the mailbox cursor) in one
read-only transaction, then asks the IMAP server, read-only and with a short timeout, how
many mails wait after the cursor. daemon/service/health.py decides what needs attention.

Exit status: 0 all well; 1 something needs attention (with --health: only a sick service,
not parked or quarantined mail or overdue tickets); 2 the status itself is unknown (bad
config, database unreachable or not migrated), with the reason in one line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from daemon.cli.common import PROG, UserError, load_root, user_message
from daemon.cli.sla import deadline_fields, deadlines
from daemon.cli.store import open_existing, table
from daemon.clock.now import utc_now
from daemon.config.problems import ConfigError
from daemon.config.settings import ImapSettings
from daemon.inbound.held_senders import HeldSender
from daemon.inbound.imap import Mailbox, resume_point
from daemon.inbound.imap_session import ImapError
from daemon.inbound.ticket_limit import held_senders
from daemon.service import health
from daemon.service.health import Attention, Beat, Facts, Limits, MailboxFacts, Overdue, span
from daemon.site.config import Config
from daemon.store import intake
from daemon.store.database import Database, StoreError, current_revision, shipped_head
from daemon.store.heartbeats import heartbeats
from daemon.store.models import Outbox, Quarantine, Ticket

# A health check must answer quickly even when the IMAP server does not.
PROBE_TIMEOUT = timedelta(seconds=10)
OVERDUE_SHOWN = 50
ERROR_WIDTH = 60
UNKNOWN = 2


@dataclass(frozen=True)
class Report:
    facts: Facts
    limits: Limits
    database: str
    open_by_state: dict[str, int]
    open_by_team: dict[str, int]
    items: list[Attention]


def status_command(root: Path, *, as_json: bool, health_only: bool,
                   now: datetime | None = None) -> int:
    try:
        report = build_report(root, now or utc_now())
    except (ConfigError, StoreError, SQLAlchemyError, UserError, OSError) as exc:
        reason = _unknown_reason(exc)
        print(f"{PROG}: status unknown: {reason}", file=sys.stderr)
        if as_json:
            print(json.dumps({"status": "unknown", "reason": reason}))
        return UNKNOWN
    code = health.exit_code(report.items, health_only)
    print(json.dumps(as_dict(report), indent=2, ensure_ascii=False) if as_json
          else render(report, health_only))
    return code


def _unknown_reason(exc: Exception) -> str:
    if isinstance(exc, ConfigError):
        count = len(exc.problems)
        return (f"the configuration has {count} problem{'s' if count != 1 else ''} "
                f"(`{PROG} check` lists them), the first: {exc.problems[0]}")
    # The same one line any command prints for a store or file problem.
    return user_message(exc) or f"{type(exc).__name__}: {exc}"


def build_report(root: Path, now: datetime) -> Report:
    config = load_root(root)
    limits = health.limits(config.settings)
    database = open_existing(config.settings.database.url)
    try:
        _require_current_schema(database)
        with database.reading() as session:
            store = read_store(session, config, now)
    finally:
        database.close()
    mailbox = probe(config.settings.imap, store.cursor)
    facts = Facts(now, store.beats, mailbox, store.pending, store.oldest_pending_at,
                  store.parked, store.quarantined, store.overdue, store.held_senders)
    return Report(facts, limits, database.safe_url, store.open_by_state, store.open_by_team,
                  health.attention(facts, limits))


def _require_current_schema(database: Database) -> None:
    stamped, shipped = current_revision(database), shipped_head()
    if stamped != shipped:
        raise StoreError(f"database {database.safe_url} has schema {stamped}, this Tierdesk "
                         f"{shipped}: after an upgrade, start the daemon (it migrates on "
                         "start); a newer schema needs the newer Tierdesk")


# ------------------------------------------------------------------ reading the store

@dataclass(frozen=True)
class StoreFacts:
    beats: list[Beat]
    pending: int
    oldest_pending_at: datetime | None
    parked: int
    quarantined: int
    open_by_state: dict[str, int]
    open_by_team: dict[str, int]
    overdue: list[Overdue]
    cursor: tuple[int, int] | None
    held_senders: list[HeldSender]


def read_store(session: Session, config: Config, now: datetime) -> StoreFacts:
    beats = [Beat(r.daemon, r.loop, r.started_at, r.beat_at, r.ok_at, r.error, r.error_at,
                  dict(r.detail or {}), r.stopped_at) for r in heartbeats(session)]
    outbox = {status: (n, oldest) for status, n, oldest in session.execute(
        select(Outbox.status, func.count(), func.min(Outbox.created_at))
        .where(Outbox.status.in_(("pending", "sending", "parked"))).group_by(Outbox.status))}
    waiting = [outbox[s] for s in ("pending", "sending") if s in outbox]
    quarantined = session.scalar(select(func.count()).select_from(Quarantine)
                                 .where(Quarantine.retried_at.is_(None)))
    by_state, by_team = open_tickets(session, config)
    cursor = intake.get_cursor(session, config.settings.imap.folder)
    return StoreFacts(
        beats, sum(n for n, _ in waiting), min((o for _, o in waiting if o), default=None),
        outbox.get("parked", (0, None))[0], int(quarantined or 0), by_state, by_team,
        overdue_tickets(session, now),
        (cursor.uidvalidity, cursor.last_uid) if cursor else None,
        held_senders(session, now, config.settings.mail.max_new_tickets_per_hour))


def open_tickets(session: Session, config: Config) -> tuple[dict[str, int], dict[str, int]]:
    """Tickets not in a final state of their workflow, per state and per team."""
    by_state: dict[str, int] = {}
    by_team: dict[str, int] = {}
    rows = session.execute(select(Ticket.workflow_name, Ticket.state, Ticket.team, func.count())
                           .group_by(Ticket.workflow_name, Ticket.state, Ticket.team))
    for workflow_name, state, team, n in rows:
        workflow = config.workflows.get(workflow_name)
        known = workflow.states.get(state) if workflow else None
        if known is not None and known.final:
            continue
        by_state[state] = by_state.get(state, 0) + n
        by_team[team or "-"] = by_team.get(team or "-", 0) + n
    return _by_count(by_state), _by_count(by_team)


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def overdue_tickets(session: Session, now: datetime) -> list[Overdue]:
    """Tickets whose current deadline (as `tickets` computes it) has passed, most overdue
    first."""
    late = {ticket_id: due for ticket_id, due in deadlines(session, None).items() if due < now}
    found: list[Overdue] = []
    for chunk in _chunks(sorted(late), 500):  # keeps each IN list well inside SQLite's limit
        rows = session.execute(select(Ticket.id, Ticket.ref, Ticket.state, Ticket.team)
                               .where(Ticket.id.in_(chunk)))
        found += [Overdue(ref, state, team, late[ticket_id])
                  for ticket_id, ref, state, team in rows]
    return sorted(found, key=lambda o: o.deadline)


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    return (items[i:i + size] for i in range(0, len(items), size))


# ------------------------------------------------------------------ asking the mailbox

def probe(settings: ImapSettings, cursor: tuple[int, int] | None) -> MailboxFacts:
    """Mails after the cursor, and when the oldest arrived; read-only (EXAMINE)."""
    quick = settings.model_copy(update={"timeout": min(settings.timeout, PROBE_TIMEOUT)})
    mailbox = Mailbox(quick)
    where = f"{settings.folder} on {settings.host}:{settings.port}"
    try:
        mailbox.connect()
        start = resume_point(cursor, mailbox.examine())
        uids = mailbox.uids_after(start.last_uid)
        oldest = mailbox.arrived_at(uids[0]) if uids else None
    except ImapError as exc:
        return MailboxFacts(where, error=str(exc))
    finally:
        mailbox.close()
    return MailboxFacts(where, len(uids), oldest)


# ------------------------------------------------------------------ JSON

def as_dict(report: Report) -> dict[str, Any]:
    facts, now = report.facts, report.facts.now
    box = facts.mailbox
    overdue = facts.overdue
    return {
        "status": "attention" if report.items else "ok",
        "at": now.isoformat(),
        "database": report.database,
        "limits": report.limits.as_json(),
        "daemons": [_daemon(d, now, report.limits) for d in
                    health.daemons(facts.beats, now, report.limits.stale_after)],
        "mailbox": {"where": box.where, "reachable": box.error is None, "error": box.error,
                    "waiting": box.waiting, "oldest_waiting_at": _iso(box.oldest_at),
                    "oldest_waiting_s": _seconds(box.oldest_at, now)},
        "outbox": {"pending": facts.pending, "oldest_pending_at": _iso(facts.oldest_pending_at),
                   "oldest_pending_s": _seconds(facts.oldest_pending_at, now),
                   "parked": facts.parked},
        "quarantine": {"waiting": facts.quarantined},
        "tickets": {"open": sum(report.open_by_state.values()),
                    "by_state": report.open_by_state, "by_team": report.open_by_team,
                    "past_deadline": len(overdue),
                    "past_deadline_first": [
                        {"ref": o.ref, "state": o.state, "team": o.team,
                         **deadline_fields(o.deadline, now)} for o in overdue[:OVERDUE_SHOWN]]},
        "held_senders": [{"address": h.address, "tickets": h.tickets, "held": h.held,
                          "ticket": h.ticket, "limit": h.limit, "release": h.release}
                         for h in facts.held_senders],
        "attention": [{"code": a.code, "service": a.service, "message": a.message,
                       "fix": a.fix} for a in report.items],
    }


def _daemon(daemon: health.Daemon, now: datetime, limits: Limits) -> dict[str, Any]:
    return {"daemon": daemon.name, "state": daemon.state, "replaced_by": daemon.replaced_by,
            "started_at": daemon.started_at.isoformat(),
            "loops": [{"loop": b.loop, "state": health.loop_state(b, now, limits.stale_after),
                       "beat_at": b.beat_at.isoformat(), "beat_s": _seconds(b.beat_at, now),
                       "ok_at": _iso(b.ok_at), "error": b.error, "error_at": _iso(b.error_at),
                       "failing": health.failing(b, now, limits.stale_after),
                       "detail": dict(b.detail), "stopped_at": _iso(b.stopped_at)}
                      for b in daemon.loops]}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _seconds(moment: datetime | None, now: datetime) -> int | None:
    return None if moment is None else int((now - moment).total_seconds())


# ------------------------------------------------------------------ text

def render(report: Report, health_only: bool) -> str:
    facts, now = report.facts, report.facts.now
    lines = [f"Tierdesk status at {now:%Y-%m-%d %H:%M:%S} UTC, database {report.database}", ""]
    lines += _daemon_lines(facts, report.limits)
    lines += ["", *_summary_lines(report)]
    lines += ["", *_attention_lines(report.items, health_only)]
    return "\n".join(lines)


def _daemon_lines(facts: Facts, limits: Limits) -> list[str]:
    now = facts.now
    found = health.daemons(facts.beats, now, limits.stale_after)
    if not found:
        return ["Daemons: none has run on this database"
                + ("" if not facts.beats else f" in the last {span(health.FORGET_AFTER)}")]
    rows = [("DAEMON", "STATE", "LOOP", "BEAT", "LAST OK", "LAST ERROR")]
    for daemon in found:
        state = daemon.state + (f" (restarted as {daemon.replaced_by})"
                                if daemon.state == "dead" and daemon.replaced_by else "")
        for i, beat in enumerate(daemon.loops):
            alive = health.loop_state(beat, now, limits.stale_after)
            rows.append(("" if i else daemon.name, "" if i else state,
                         beat.loop + ("" if alive == "alive" else f" ({alive})"),
                         _ago(beat.beat_at, now), _ago(beat.ok_at, now), _error(beat, now)))
    heading = f"Daemons (a loop is stale after {span(limits.stale_after)} without a beat)"
    return [heading, *("  " + line for line in table(rows).splitlines())]


def _summary_lines(report: Report) -> list[str]:
    facts, now = report.facts, report.facts.now
    box = facts.mailbox
    mailbox = (f"cannot ask {box.where}" if box.error is not None else
               f"{box.waiting} waiting in {box.where}"
               + (f", the oldest for {span(now - box.oldest_at)}" if box.oldest_at else ""))
    outbox = (f"{facts.pending} pending"
              + (f" (oldest {span(now - facts.oldest_pending_at)})"
                 if facts.oldest_pending_at else "") + f", {facts.parked} parked")
    open_count = sum(report.open_by_state.values())
    tickets = f"{open_count} open" + (
        f"; by state {_counts(report.open_by_state)}; by team {_counts(report.open_by_team)}"
        if open_count else "") + f"; {len(facts.overdue)} past the deadline"
    return [f"Mailbox     {mailbox}", f"Outbox      {outbox}",
            f"Quarantine  {facts.quarantined} waiting", f"Tickets     {tickets}"]


def _attention_lines(items: Sequence[Attention], health_only: bool) -> list[str]:
    if not items:
        return ["all well"]
    lines = [f"attention ({len(items)}):"]
    for item in items:
        note = "" if item.service or not health_only else " (not counted by --health)"
        lines.append(f"  - {item}{note}")
    return lines


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def _ago(moment: datetime | None, now: datetime) -> str:
    return "-" if moment is None else f"{span(now - moment)} ago"


def _error(beat: Beat, now: datetime) -> str:
    if beat.error is None:
        return "-"
    text = " ".join(beat.error.split())
    text = text if len(text) <= ERROR_WIDTH else text[:ERROR_WIDTH - 1] + "…"
    return f"{_ago(beat.error_at, now)}: {text}"
