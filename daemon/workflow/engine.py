"""The workflow engine: ticket facts and one event in, a Decision out. Pure: no I/O, `now` given.

All tickets share one `transitions.Machine` (see moves.py). A request the workflow does not allow
never raises: it comes back as Decision(ticket unchanged, refusal="one sentence why").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from transitions import Machine

from daemon.workflow.actions import Actions
from daemon.workflow.explain import Explainer, may_use, usable_in
from daemon.workflow.facts import (
    CommandIssued,
    Decision,
    Event,
    EventRecord,
    LinkFacts,
    NewTicket,
    RequesterReplied,
    TicketFacts,
    TimerFired,
    TimerOrder,
    VendorReplied,
)
from daemon.workflow.mails import Notifier, context, first_lines
from daemon.workflow.model import Workflow
from daemon.workflow.moves import Move, Moves
from daemon.workflow.timers import AddTime, TicketTargets, Timers, VendorClock, wall_clock
from daemon.workflow.triage import Triager, Verdict, percent

__all__ = ["AddTime", "Engine", "VendorClock", "wall_clock"]

REPLY_TRIGGER = "customer_replied"
VENDOR_TRIGGER = "vendor_replied"
ROUTE_TRIGGER = "route"


def refuse(ticket: TicketFacts, why: str) -> Decision:
    return Decision(ticket=ticket, refusal=why)


def responded(decision: Decision, now: datetime) -> Decision:
    """A technician's first move of the ticket is its first response (the requester hears of
    it); a public text update by mail counts too (technician.py)."""
    if decision.refused or decision.ticket.responded_at is not None:
        return decision
    return replace(decision, ticket=replace(decision.ticket, responded_at=now))


def _auto_link(verdict: Verdict, ticket: TicketFacts) -> dict[str, Any] | None:
    """What the front line's notice says of a link a triage rule made (None: no such link)."""
    alike = verdict.link
    if alike is None or ticket.parent is None:
        return None
    return {"incident": ticket.parent, "lookalike": alike.ref, "rule": verdict.rule,
            "score": percent(alike.score)}


def _deadline(timers: tuple[TimerOrder, ...]) -> datetime | None:
    return next((t.due_at for t in timers if t.kind == "expire"), None)


class Engine:
    """Decides what one event does to one ticket, for one workflow."""

    def __init__(self, workflow: Workflow, add_time: AddTime = wall_clock,
                 vendors: Mapping[str, VendorClock] | None = None) -> None:
        self._wf = workflow
        self._moves = Moves(workflow)
        self._timers = Timers(workflow, add_time, vendors)
        self._targets = TicketTargets(workflow, add_time)
        self._triage = Triager(workflow.triage, workflow.default_priority)
        self._notify = Notifier(workflow.notify)
        self._explain = Explainer(workflow, self._moves)
        self._actions = Actions(workflow, self._timers, self._targets)
        self._states = {name.lower(): name for name in workflow.states}

    @property
    def machine(self) -> Machine:
        """The one `transitions.Machine` every ticket of this workflow goes through."""
        return self._moves.machine

    def mail_facts(self, ticket: TicketFacts) -> dict[str, Any]:
        """What mail about `ticket` needs of the workflow, on top of `context`: the calendar
        that governs its state (times are shown in its zone), whom a paused clock waits on
        ("vendor", "requester" or None) and since when."""
        return {"calendar": self._timers.calendar(ticket.state, ticket.vendor),
                "waiting_on": self._waiting_on(ticket.state),
                "state_entered_at": ticket.state_entered_at}

    def _waiting_on(self, state: str) -> str | None:
        # A paused clock waits on whoever's answer moves the ticket on (the workflow's
        # vendor_replied / customer_replied), or on the vendor whose clock runs instead.
        found = self._wf.states.get(state)
        if found is None or found.clock != "paused":
            return None
        vendor_clock = found.timeout is not None and found.timeout.vendor_clock
        if vendor_clock or self._moves.can(state, VENDOR_TRIGGER):
            return "vendor"
        return "requester" if self._moves.can(state, REPLY_TRIGGER) else None

    def _context(self, before: TicketFacts, after: TicketFacts, **facts: Any) -> dict[str, Any]:
        return {**context(before, after, **facts), **self.mail_facts(after)}

    @property
    def looks_like_open(self) -> float | None:
        """The score above which an open look-alike matters to triage (None: no rule asks):
        the shell searches for one before `open` only then."""
        return self._triage.looks_like_open

    def triggers_from(self, state: str) -> tuple[str, ...]:
        """Triggers with a transition from `state`, in workflow order (for help texts)."""
        return self._moves.triggers_from(state)

    # ------------------------------------------------------------ a new ticket
    def open(self, report: NewTicket, now: datetime) -> Decision:
        verdict = self._triage.classify(report)
        fresh = self._fresh(report, verdict.priority, now)
        created = EventRecord("created", "requester", None, fresh.state, verdict.reason,
                              {"rule": verdict.rule, "priority": verdict.priority})
        routed = (self._join(fresh, verdict, now) if verdict.link is not None
                  else self._route(fresh, verdict, now))
        facts = self._context(fresh, routed.ticket, event="created", actor="requester",
                              reason=verdict.reason, deadline=_deadline(routed.timers),
                              excerpt=first_lines(report.body))
        facts["auto_link"] = _auto_link(verdict, routed.ticket)
        # A report's own clock never starts: its incident's governs (as after #link).
        linked = routed.ticket.parent is not None
        targets = () if linked else self._targets.schedule(routed.ticket.priority, now)
        return replace(routed, events=(created, *routed.events), cancel_timers=True,
                       cancel_targets=False, timers=(*routed.timers, *targets),
                       mails=self._notify.mails("created", facts) + routed.mails)

    def _join(self, ticket: TicketFacts, verdict: Verdict, now: datetime) -> Decision:
        """A triage rule links the new ticket to the open one it looks like. Refused (the
        shell's facts are checked like #link's): the ticket stays, on its own clock."""
        alike = verdict.link
        assert alike is not None  # the caller checked it
        joined = self._actions.join(ticket, LinkFacts(alike.incident), "triage",
                                    verdict.reason, now, rule=verdict.rule,
                                    lookalike=alike.ref, score=round(alike.score, 3))
        if joined.refused:
            stay = self._route(ticket, replace(verdict, route=None, link=None), now)
            failed = EventRecord("link_refused", "triage", ticket.state, ticket.state,
                                 joined.refusal or "", {"rule": verdict.rule})
            return replace(stay, events=(failed,))
        return self._incident_news(ticket, joined, "triage", alike.incident)

    def _fresh(self, report: NewTicket, priority: str, now: datetime) -> TicketFacts:
        initial = self._wf.initial
        return TicketFacts(ref=report.ref, state=initial, priority=priority,
                           team=self._wf.states[initial].team, requester=report.requester,
                           subject=report.subject, created_at=now, state_entered_at=now)

    def _route(self, ticket: TicketFacts, verdict: Verdict, now: datetime) -> Decision:
        stay = Decision(ticket, timers=self._timers.schedule(ticket.state, ticket.priority, now))
        if verdict.route is None:
            return stay
        move = Move(ROUTE_TRIGGER, "triage", verdict.reason, target=self._state(verdict.route),
                    data={"rule": verdict.rule})
        routed = self._move(ticket, move, now)
        if not routed.refused:
            return routed
        why = routed.refusal or ""
        failed = EventRecord("route_refused", "triage", ticket.state, ticket.state, why)
        return replace(stay, events=(failed,))

    # ------------------------------------------------------------ events on a ticket
    def handle(self, ticket: TicketFacts, event: Event, now: datetime) -> Decision:
        if ticket.state not in self._wf.states:
            return refuse(ticket, f"state {ticket.state} is not in workflow {self._wf.name}; "
                                  "move the ticket to a state it has")
        if isinstance(event, TimerFired):
            return self._timer(ticket, event, now)
        if isinstance(event, CommandIssued):
            return self._command(ticket, event, now)
        if isinstance(event, RequesterReplied):
            return self._reply(ticket, event, now)
        if isinstance(event, VendorReplied):
            return self._vendor_reply(ticket, event, now)
        return refuse(ticket, f"the engine does not know events of type {type(event).__name__}")

    def _timer(self, ticket: TicketFacts, timer: TimerFired, now: datetime) -> Decision:
        if timer.kind in TicketTargets.KINDS:
            return self._target_passed(ticket, timer.kind)
        if timer.state != ticket.state or self._timers.timeout(ticket.state) is None:
            return Decision(ticket)  # stale: set for a state the ticket has left
        if timer.kind == "expire":
            return self._expire(ticket, now)
        kind = "reminder" if timer.kind == "remind" else "warning"
        return self._alert(ticket, kind, timer.seq)

    def _target_passed(self, ticket: TicketFacts, kind: str) -> Decision:
        """A whole-ticket target came due: a breach, unless it was met (a technician acted;
        the clock stopped). Paused time is the clock loop's to add before it calls this."""
        met = (ticket.responded_at is not None if kind == "respond"
               else self._wf.states[ticket.state].clock == "stopped")
        name = TicketTargets.KINDS[kind]
        within = self._targets.spell(kind, ticket.priority)
        # Either way the timeline says so: the SLA history reads from it.
        record = (EventRecord("sla_met", "clock", ticket.state, ticket.state,
                              f"{name} within {within}", {"target": name}) if met else
                  EventRecord("sla_breach", "clock", ticket.state, ticket.state,
                              f"no {name} within {within}", {"target": name}))
        return Decision(ticket, events=(record,))

    def _alert(self, ticket: TicketFacts, kind: str, seq: int) -> Decision:
        deadline = self._timers.deadline(ticket.state, ticket.priority, ticket.state_entered_at,
                                         ticket.vendor)
        # A person reads this in the timeline: minutes, UTC said out loud, no seconds.
        due = f", deadline {deadline:%Y-%m-%d %H:%M} UTC" if deadline else ""
        nth = f" {seq}" if seq else ""
        reason = f"{kind}{nth} for {ticket.state}"
        event = EventRecord(kind, "clock", ticket.state, ticket.state, reason + due, {"seq": seq})
        # The mail shows the deadline itself, in its calendar's zone: not the UTC of the log.
        facts = self._context(ticket, ticket, event=kind, actor="clock", reason=reason,
                              deadline=deadline)
        return Decision(ticket, events=(event,), mails=self._notify.mails(kind, facts))

    def _expire(self, ticket: TicketFacts, now: datetime) -> Decision:
        timeout = self._timers.timeout(ticket.state)
        assert timeout is not None  # checked by _timer
        reason = self._timers.reason(ticket.state, ticket.priority, ticket.vendor)
        move = Move(timeout.then, "clock", reason, data={"timer": "expire"})
        decision = self._move(ticket, move, now)
        if decision.refused or self._wf.states[ticket.state].clock != "running":
            return decision  # a paused or stopped clock has no target of ours to miss
        # The state's own target was missed: recorded as such, for SLA reports.
        breach = EventRecord("sla_breach", "clock", ticket.state, ticket.state,
                             f"{ticket.state} missed its target: {reason}",
                             {"target_s": int(timeout.limit(ticket.priority).total_seconds())})
        return replace(decision, events=(breach, *decision.events))

    def _reply(self, ticket: TicketFacts, reply: RequesterReplied, now: datetime) -> Decision:
        if self._wf.states[ticket.state].final:
            return refuse(ticket, f"ticket is {ticket.state}; a reply opens a new ticket")
        if ticket.parent is not None and self._wf.states[ticket.state].clock != "stopped":
            return self._incident_reply(ticket, reply)
        reason = "the requester replied"
        if self._moves.can(ticket.state, REPLY_TRIGGER):
            move = Move(REPLY_TRIGGER, "requester", reason, argument=reply.text)
            moved = self._move(ticket, move, now)
            if not moved.refused:
                return moved
            reason = f"{reason}; the ticket stays: {moved.refusal}"
        event = EventRecord("reply", "requester", ticket.state, ticket.state, reason)
        # The owning team must learn the requester wrote, or the answer sits unread.
        facts = self._context(ticket, ticket, event="replied", actor="requester",
                              reason=reason, argument=reply.text)
        return Decision(ticket, events=(event,), mails=self._notify.mails("replied", facts))

    def _incident_reply(self, ticket: TicketFacts, reply: RequesterReplied) -> Decision:
        """A report of an incident stays where it is (the incident's clock governs); the
        incident's team hears of the reply, since they are the ones working on it."""
        reason = f"the requester replied; passed to the team of incident {ticket.parent}"
        event = EventRecord("reply", "requester", ticket.state, ticket.state, reason,
                            {"incident": ticket.parent})
        facts = self._context(ticket, ticket, event="replied", actor="requester",
                              reason=reason, argument=reply.text)
        facts = {**facts, "team": ticket.parent_team or ticket.team, "incident": ticket.parent}
        return Decision(ticket, events=(event,), mails=self._notify.mails("replied", facts))

    def follow(self, ticket: TicketFacts, parent: TicketFacts, trigger: str, actor: str,
               summary: str, now: datetime) -> Decision:
        """A report follows its incident into a stopped clock (resolved with it: the same
        summary, its own timeline and SLA record). Its mails are the incident's to send (the
        workflow's `linked` recipients), so the report's own are dropped."""
        if ticket.state == parent.state:
            return Decision(ticket)
        move = Move(trigger, actor, summary, target=parent.state, argument=summary,
                    label=f"incident {parent.ref}",
                    data={"incident": parent.ref})
        return replace(responded(self._move(ticket, move, now), now), mails=())

    def _vendor_reply(self, ticket: TicketFacts, reply: VendorReplied,
                      now: datetime) -> Decision:
        """Back to the owning tier when the workflow has `vendor_replied` from this state, so
        the answer does not sit on the vendor's clock; otherwise nothing moves."""
        if not self._moves.can(ticket.state, VENDOR_TRIGGER):
            return Decision(ticket)
        move = Move(VENDOR_TRIGGER, "vendor", "the vendor replied", argument=reply.text)
        moved = self._move(ticket, move, now)
        return Decision(ticket) if moved.refused else moved

    def _command(self, ticket: TicketFacts, cmd: CommandIssued, now: datetime) -> Decision:
        name = cmd.name.lstrip("#").lower()
        command = self._wf.commands.get(name)
        if command is None:
            return refuse(ticket, self._explain.unknown_command(name))
        if not may_use(command, cmd.actor_team):
            return refuse(ticket, self._explain.not_for_team(name, command, cmd.actor_team))
        if not usable_in(command, ticket.state):
            return refuse(ticket, f"#{name} is not used in {ticket.state}; the workflow allows "
                                  f"it in {', '.join(command.states)}")
        if command.trigger is None:  # take, note, status...: work, not yet a response
            done = self._actions.run(command, ticket, replace(cmd, name=name), now)
            return self._incident_news(ticket, done, cmd.actor,
                                       cmd.link.parent if cmd.link is not None else None)
        return responded(self._move(ticket, self._command_move(name, command.trigger, cmd),
                                    now), now)

    def _incident_news(self, before: TicketFacts, decision: Decision, actor: str,
                       parent: TicketFacts | None) -> Decision:
        """notify `link`/`unlink` when the ticket's incident changed: its requester learns
        once that news now comes from the incident (or no longer does). A repeated #link of
        the same incident changes nothing and tells nobody."""
        after = decision.ticket
        if decision.refused or after.parent == before.parent:
            return decision
        key = "link" if after.parent is not None else "unlink"
        reason = decision.events[0].reason if decision.events else ""
        facts = {**self._context(before, after, event=key, actor=actor, reason=reason),
                 # On unlink, the incident it has left: the notice names it.
                 "incident": after.parent or before.parent,
                 "incident_subject": parent.subject if parent is not None else None}
        return replace(decision, mails=(*decision.mails, *self._notify.mails(key, facts)))

    def _command_move(self, name: str, trigger: str, cmd: CommandIssued) -> Move:
        target = None if cmd.target is None else self._state(cmd.target)
        return Move(trigger, cmd.actor, cmd.argument.strip(), target=target, label=f"#{name}",
                    team=cmd.actor_team, argument=cmd.argument,
                    data={"command": name, "team": cmd.actor_team})

    def _state(self, name: str) -> str:
        """A state named in any case (`#escalate to Tier3`); unknown names stay as written."""
        return self._states.get(name.strip().lower(), name.strip())

    # ------------------------------------------------------------ moving
    def _move(self, ticket: TicketFacts, move: Move, now: datetime) -> Decision:
        if not self._moves.can(ticket.state, move.trigger):
            return refuse(ticket, self._explain.impossible(ticket, move))
        dest = self._fire(ticket, move)
        if dest is None:
            return refuse(ticket, self._explain.blocked(ticket, move))
        return self._enter(ticket, self._arrive(ticket, dest, now), move)

    def _fire(self, ticket: TicketFacts, move: Move) -> str | None:
        """The state the shared machine moves the ticket to (None: a guard refused)."""
        return self._moves.fire(ticket, move)

    def _arrive(self, ticket: TicketFacts, dest: str, now: datetime) -> TicketFacts:
        """The ticket as it enters `dest` (again, for a self-transition)."""
        # A state without a team (closed) keeps the last owner, so a closed ticket shows who had it.
        team = self._wf.states[dest].team or ticket.team
        running = self._wf.states[ticket.state].clock == "running"
        back = ticket.state if running else ticket.return_state
        visited, bounces, flagged = self._tiers(ticket, dest, back)
        return replace(ticket, state=dest, state_entered_at=now, team=team, return_state=back,
                       assignee=ticket.assignee if team == ticket.team else None,
                       tiers_visited=visited, bounces=bounces, flagged=flagged)

    def _tiers(self, ticket: TicketFacts, dest: str,
               back: str | None) -> tuple[tuple[str, ...], int, bool]:
        """Tiers visited, bounces and the flag after entering `dest`.

        Entering a tier visited before is a bounce, unless it is the working state the ticket just
        left (`back`): a self-transition, a reply from waiting_on_customer, the vendor handing back,
        or a reopen return the ticket to where it was being worked, they do not pass it around.
        """
        if self._wf.states[dest].tier is None:
            return ticket.tiers_visited, ticket.bounces, ticket.flagged
        if dest not in ticket.tiers_visited:
            return (*ticket.tiers_visited, dest), ticket.bounces, ticket.flagged
        if dest == back:
            return ticket.tiers_visited, ticket.bounces, ticket.flagged
        guard = self._wf.bounce_guard
        over = guard is not None and ticket.bounces + 1 > guard.max_bounces
        return ticket.tiers_visited, ticket.bounces + 1, ticket.flagged or over

    def _enter(self, before: TicketFacts, after: TicketFacts, move: Move) -> Decision:
        events: list[EventRecord] = []
        stopped = self._wf.states[before.state].clock == "stopped"
        if after.parent is not None and stopped and not self._stops(after.state):
            # A report resolved with its incident and reopened (the requester says it still
            # fails) is a problem of its own again: it leaves the incident, on its own clock.
            events.append(EventRecord("unlink", move.actor, before.state, before.state,
                                      f"reopened on its own: no longer a report of "
                                      f"{after.parent}", {"parent": after.parent}))
            after = replace(after, parent=None, parent_team=None)
        timers = self._timers.schedule(after.state, after.priority, after.state_entered_at,
                                       after.vendor)
        if after.parent is not None and not self._stops(after.state):
            timers = ()  # a report's own clock stays stopped: its incident's governs
        facts = self._context(before, after, event="transition", actor=move.actor,
                              reason=move.reason, argument=move.argument, trigger=move.trigger,
                              deadline=_deadline(timers))
        data = {"trigger": move.trigger, "target": move.target, **move.data}
        events.append(EventRecord("transition", move.actor, before.state, after.state,
                                  move.reason, data))
        mails = self._notify.for_move(move.trigger, before.state != after.state, facts)
        if after.flagged and not before.flagged:
            events.append(self._flag_event(after, move.actor))
            mails += self._notify.mails("bounce_flagged", {**facts, "event": "bounce_flagged"})
        return Decision(after, tuple(events), cancel_timers=True, timers=timers, mails=mails)

    def _stops(self, state: str) -> bool:
        found = self._wf.states[state]
        return found.clock == "stopped" or found.final

    def _flag_event(self, ticket: TicketFacts, actor: str) -> EventRecord:
        guard = self._wf.bounce_guard
        limit = guard.max_bounces if guard else 0
        why = f"moved back to a tier already visited {ticket.bounces} times (more than {limit})"
        return EventRecord("bounce_flagged", actor, ticket.state, ticket.state, why,
                           {"bounces": ticket.bounces})

