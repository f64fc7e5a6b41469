"""The clock side of `tickets` and `show`: time left on each ticket, and one ticket's SLA
history (each state's time against its own target, first response, resolution)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.clock.sla import Measure, SlaReport
from daemon.store.models import Ticket, Timer


def deadlines(session: Session, state: str | None) -> dict[int, datetime]:
    """Each listed ticket's current deadline (its pending expiry), in one grouped query."""
    stmt = (select(Timer.ticket_id, func.min(Timer.due_at)).where(Timer.kind == "expire")
            .group_by(Timer.ticket_id))
    if state is not None:
        stmt = stmt.where(Timer.ticket_id.in_(select(Ticket.id).where(Ticket.state == state)))
    return {ticket_id: due for ticket_id, due in session.execute(stmt)}


def deadline_fields(deadline: datetime | None, now: datetime) -> dict[str, Any]:
    """The current state's deadline, and the seconds left (negative: overdue): the JSON of
    `tickets --json` and of `status --json`."""
    if deadline is None:
        return {"deadline": None, "time_left_s": None}
    return {"deadline": deadline.isoformat(),
            "time_left_s": int((deadline - now).total_seconds())}


def time_left(deadline: datetime | None, now: datetime) -> str:
    if deadline is None:
        return "-"
    left = deadline - now
    return _span(left) if left >= timedelta(0) else f"overdue {_span(-left)}"


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (mins, "m")]
    shown = [f"{n}{unit}" for n, unit in parts if n][:2]
    return "".join(shown) or "0m"


def render_sla(sla: SlaReport) -> str:
    lines = ["SLA (working time on each state's calendar; targets from the workflow)"]
    for measure in (sla.first_response, sla.resolution):
        lines.append(f"  {measure.name:<15} {_measure(measure)}")
    rows = [("STATE", "ENTERED", "TIME", "TARGET", "")]
    for stint in sla.stints:
        m = stint.measure
        rows.append((stint.state, f"{stint.entered:%Y-%m-%d %H:%M}",
                     _span(m.took) + ("" if m.done else " so far"),
                     _span(m.target) if m.target else "-", _verdict(m)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[4]
              for r in rows]
    paused = sla.time_in("paused")
    if paused:
        lines.append(f"  paused (waiting on the requester or a vendor): {_span(paused)}")
    if sla.breaches:
        lines.append(f"  breaches: {', '.join(m.name for m in sla.breaches)}")
    return "\n".join(line.rstrip() for line in lines)


def _measure(m: Measure) -> str:
    took = _span(m.took) + ("" if m.done else " so far")
    if m.target is None:
        return f"{took} (no target)"
    return f"{took} of {_span(m.target)}: {_verdict(m)}"


def _verdict(m: Measure) -> str:
    if m.target is None:
        return ""
    if m.breached:
        return f"BREACHED by {_span(m.took - m.target)}"
    left = m.left or timedelta(0)
    return "met" if m.done else f"{_span(left)} left"
