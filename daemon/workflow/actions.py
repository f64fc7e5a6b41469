"""Command actions that leave the state alone: take, assign, note, priority, status, help."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from daemon.workflow.facts import CommandIssued, Decision, EventRecord, TicketFacts
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
        self._timers = timers
        self._targets = targets
        self._run: dict[str, Callable[[TicketFacts, CommandIssued, datetime], Decision]] = {
            "take": self._take, "assign": self._assign, "note": self._note,
            "priority": self._priority, "status": self._status, "help": self._help,
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
