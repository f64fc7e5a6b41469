"""Command actions that leave the state alone: take, assign, note, priority, status, help, and
link/unlink (a ticket becomes a report of an incident, or stops being one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from daemon.workflow.facts import (
    CommandIssued,
    Decision,
    EventRecord,
    LinkFacts,
    TicketFacts,
    TimerOrder,
)
from daemon.workflow.model import Command, Workflow
from daemon.workflow.timers import TicketTargets, Timers


def record(kind: str, ticket: TicketFacts, cmd: CommandIssued, reason: str,
           **data: object) -> EventRecord:
    """An audit line for a technician's command, in the ticket's current state."""
    return EventRecord(kind, cmd.actor, ticket.state, ticket.state, reason,
                       {"command": cmd.name, "team": cmd.actor_team, **data})


def _word(cmd: CommandIssued) -> str:
    """The first word after the tag, or the `to X` target (`#assign to bob`, `#priority P1`)."""
    if cmd.target:
        return cmd.target.strip()
    words = cmd.argument.split()
    return words[0] if words else ""


def _only(ticket: TicketFacts, event: EventRecord) -> Decision:
    return Decision(ticket, events=(event,))


def _needs(ticket: TicketFacts, cmd: CommandIssued, what: str, hint: str) -> Decision:
    return Decision(ticket, refusal=f"#{cmd.name} needs {what}: #{cmd.name} {hint}")


class Actions:
    def __init__(self, workflow: Workflow, timers: Timers, targets: TicketTargets) -> None:
        self._priorities = {p.lower(): p for p in workflow.priorities}
        self._wf = workflow
        self._timers = timers
        self._targets = targets
        self._run: dict[str, Callable[[TicketFacts, CommandIssued, datetime], Decision]] = {
            "take": self._take, "assign": self._assign, "note": self._note,
            "priority": self._priority, "status": self._status, "help": self._help,
            "link": self._link, "unlink": self._unlink,
        }

    def run(self, command: Command, ticket: TicketFacts, cmd: CommandIssued,
            now: datetime) -> Decision:
        """Run `cmd`, whose name is already normalised to the workflow's command name."""
        action = self._run.get(command.action or "")
        if action is None:
            return Decision(ticket, refusal=f"#{cmd.name} names an action the engine does not know")
        return action(ticket, cmd, now)

    def _take(self, ticket: TicketFacts, cmd: CommandIssued,
              now: datetime) -> Decision:
        after = replace(ticket, assignee=cmd.actor)
        event = record("take", ticket, cmd, f"taken by {cmd.actor}", previous=ticket.assignee)
        return _only(after, event)

    def _assign(self, ticket: TicketFacts, cmd: CommandIssued,
                now: datetime) -> Decision:
        who = _word(cmd)
        if not who:
            return _needs(ticket, cmd, "someone to assign", "<address>")
        after = replace(ticket, assignee=who)
        event = record("assign", ticket, cmd, f"assigned to {who}", assignee=who,
                       previous=ticket.assignee)
        return _only(after, event)

    def _note(self, ticket: TicketFacts, cmd: CommandIssued,
              now: datetime) -> Decision:
        text = cmd.argument.strip()
        if not text:
            return _needs(ticket, cmd, "the text to note", "<text>")
        return _only(ticket, record("note", ticket, cmd, text, internal=True))

    def _priority(self, ticket: TicketFacts, cmd: CommandIssued,
                  now: datetime) -> Decision:
        wanted = self._priorities.get(_word(cmd).lower())
        if wanted is None:
            choices = ", ".join(self._priorities.values())
            return _needs(ticket, cmd, f"one of {choices}", "<priority>")
        if wanted == ticket.priority:
            return _only(ticket, record("priority", ticket, cmd, f"priority is already {wanted}"))
        return self._reprioritise(ticket, cmd, wanted, now)

    def _reprioritise(self, ticket: TicketFacts, cmd: CommandIssued, wanted: str,
                      now: datetime) -> Decision:
        """The new priority, the state's timers again from when it was entered, and the
        ticket's first-response and resolution targets again from when it was opened.

        Reminders and warnings already past under the new priority are dropped (they would all
        go out at once); the expiry is kept even when past, so the clock fires it next, and so
        is a target: a P3 ticket made P1 after P1's four hours is in breach now. Targets
        already met or missed stay as recorded (only pending target timers move).
        """
        after = replace(ticket, priority=wanted)
        timers = tuple(t for t in self._timers.schedule(ticket.state, wanted,
                                                        ticket.state_entered_at, ticket.vendor)
                       if t.kind == "expire" or t.due_at > now)
        event = record("priority", ticket, cmd, f"priority {ticket.priority} -> {wanted}",
                       previous=ticket.priority, priority=wanted)
        return Decision(after, events=(event,), cancel_timers=bool(timers), timers=timers,
                        retarget=self._targets.schedule(wanted, ticket.created_at))

    def _status(self, ticket: TicketFacts, cmd: CommandIssued,
                now: datetime) -> Decision:
        return _only(ticket, record("status", ticket, cmd, "status requested"))

    def _help(self, ticket: TicketFacts, cmd: CommandIssued,
              now: datetime) -> Decision:
        return _only(ticket, record("help", ticket, cmd, "help requested"))

    # ------------------------------------------------------------ incidents

    def _link(self, ticket: TicketFacts, cmd: CommandIssued, now: datetime) -> Decision:
        """The ticket becomes a report of the incident `cmd.target`: its own clock stops (all
        its timers go; the incident's clock governs), and linking is its first response."""
        ref = (cmd.target or "").strip().upper()
        why = self._link_refusal(ticket, ref, cmd.link or LinkFacts(None))
        if why is not None:
            return Decision(ticket, refusal=why)
        parent = (cmd.link or LinkFacts(None)).parent
        assert parent is not None  # _link_refusal checked it
        if ticket.parent == parent.ref:
            return _only(ticket, record("link", ticket, cmd, f"already a report of {ref}"))
        reason = f"linked to incident {parent.ref}" + (
            f" (was {ticket.parent})" if ticket.parent else "")
        return self._joined(ticket, parent, now, record(
            "link", ticket, cmd, reason, parent=parent.ref, previous=ticket.parent))

    def join(self, ticket: TicketFacts, link: LinkFacts, actor: str, why: str,
             now: datetime, **data: object) -> Decision:
        """A link not made by a command (a triage rule on a new ticket): the same checks and
        effect as `#link`, its event saying why (`why`, `data`: the rule, the score)."""
        parent = link.parent
        refusal = self._link_refusal(ticket, parent.ref if parent else "?", link)
        if refusal is not None or parent is None:
            return Decision(ticket, refusal=refusal or "no incident to link to")
        event = EventRecord("link", actor, ticket.state, ticket.state,
                            f"linked to incident {parent.ref}: {why}",
                            {"parent": parent.ref, "previous": None, **data})
        return self._joined(ticket, parent, now, event)

    def _joined(self, ticket: TicketFacts, parent: TicketFacts, now: datetime,
                event: EventRecord) -> Decision:
        after = replace(ticket, parent=parent.ref, parent_team=parent.team,
                        responded_at=ticket.responded_at or now)
        return Decision(after, events=(event,), cancel_timers=True, cancel_targets=True)

    def _link_refusal(self, ticket: TicketFacts, ref: str, link: LinkFacts) -> str | None:
        parent = link.parent
        if not ref:
            return "#link needs the ticket of the incident: #link TD-12"
        if ref == ticket.ref:
            return f"{ticket.ref} cannot be linked to itself; name the incident's ticket"
        if self._stopped(ticket.state):
            return f"{ticket.ref} is {ticket.state}: only an open ticket can join an incident"
        if link.children:
            return (f"{ticket.ref} is itself an incident with {_count(link.children)} linked; "
                    "an incident cannot be a report of another (#unlink its reports first)")
        if parent is None:
            return f"there is no ticket {ref}"
        if link.parent_final or self._stopped(parent.state):
            return f"{ref} is {parent.state}; link to an open incident"
        if parent.parent is not None:
            return (f"{ref} is itself a report of {parent.parent}; link to {parent.parent} "
                    "instead (no chains of incidents)")
        return None

    def _unlink(self, ticket: TicketFacts, cmd: CommandIssued, now: datetime) -> Decision:
        """Back on its own clock: the state's timers again from now, and the resolution
        target re-measured at once (the clock sets it again for the working time left; the
        time linked does not count, see daemon/tickets/sla.py)."""
        if ticket.parent is None:
            return Decision(ticket, refusal=f"{ticket.ref} is not linked to an incident")
        after = replace(ticket, parent=None, parent_team=None)
        event = record("unlink", ticket, cmd, f"no longer a report of {ticket.parent}",
                       parent=ticket.parent)
        if self._stopped(ticket.state):  # resolved with the incident: no clock to restore
            return _only(after, event)
        timers = self._timers.schedule(ticket.state, ticket.priority, now, ticket.vendor)
        if self._targets.target("resolve", ticket.priority) is not None:
            timers = (*timers, TimerOrder("resolve", "", now))
        return Decision(after, events=(event,), cancel_timers=True, timers=timers)

    def _stopped(self, state: str) -> bool:
        found = self._wf.states.get(state)
        return found is not None and (found.final or found.clock == "stopped")


def _count(n: int) -> str:
    return f"{n} ticket{'s' if n != 1 else ''}"
