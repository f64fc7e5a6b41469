"""Refusals: one sentence that says why a request cannot be done and what would work instead."""

from __future__ import annotations

from collections.abc import Iterable

from daemon.workflow.facts import TicketFacts
from daemon.workflow.model import PREVIOUS, Command, Transition, Workflow
from daemon.workflow.moves import CHECKS, Move, Moves, sources, working_states

# condition -> (what is missing, what to write after the tag)
_NEEDS = {
    "has_summary": ("a summary", "<what was done>"),
    "has_reason": ("a reason", "<why>"),
    "is_assigned": ("an assignee first", ""),
}
_SUMMARY_HINTS = {"resolve": "<what fixed it>"}


def either(names: Iterable[str], word: str = "or") -> str:
    items = list(names)
    if len(items) < 2:
        return items[0] if items else "nothing"
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def tags(names: Iterable[str]) -> str:
    return ", ".join(f"#{name}" for name in names)


def may_use(command: Command, team: str | None) -> bool:
    return command.teams == "all" or team in command.teams


def usable_in(command: Command, state: str) -> bool:
    """The command's `states:` allow it in `state` (none listed: every state)."""
    return not command.states or state in command.states


class Explainer:
    def __init__(self, workflow: Workflow, moves: Moves) -> None:
        self._wf = workflow
        self._moves = moves
        self._working = working_states(workflow)
        self._tiers = {name: s.tier for name, s in workflow.states.items() if s.tier is not None}

    # ------------------------------------------------------------ commands
    def unknown_command(self, name: str) -> str:
        return f"#{name} is not a command; known commands: {tags(self._wf.commands)}"

    def not_for_team(self, name: str, command: Command, team: str) -> str:
        return f"#{name} may be used by {either(command.teams, 'and')} only, not by {team}"

    # ------------------------------------------------------------ moves
    def impossible(self, ticket: TicketFacts, move: Move) -> str:
        """`move.trigger` has no transition from the ticket's state."""
        state = ticket.state
        if self._wf.states[state].final:
            return (f"{move.name} is not possible in state {state}: the ticket is finished; "
                    "a reply from the requester opens a new ticket")
        edge = self._edge(ticket, move.trigger)
        where = f": {edge}" if edge else f" in state {state}"
        return f"{move.name} is not possible{where}; {self._possible(state, move.team)}"

    def blocked(self, ticket: TicketFacts, move: Move) -> str:
        """`move.trigger` exists from the ticket's state, but no guard let it through."""
        rules = self._rules(ticket.state, move.trigger)
        allowed = self._targets(ticket, rules)
        lost = self._back(ticket) is None and any(PREVIOUS in r.dest for r in rules)
        if lost and (not allowed or move.target is None):
            return self._no_way_back(move, allowed)
        if move.target is not None and move.target not in allowed:
            return self._wrong_target(ticket.state, move, allowed)
        if move.target is not None:
            rules = [r for r in rules if move.target in self._targets(ticket, [r])]
        failed = [c for c in (r.condition for r in rules) if c and not CHECKS[c](ticket, move)]
        if failed:
            return self._missing(failed[0], move)
        return f"{move.name} is not possible from {ticket.state} right now"

    def _no_way_back(self, move: Move, allowed: list[str]) -> str:
        why = f"{move.name} returns to the state the ticket came from, and this ticket has none"
        return f"{why}; name one instead: {move.name} to {either(allowed)}" if allowed else why

    def _wrong_target(self, state: str, move: Move, allowed: list[str]) -> str:
        return f"{move.name} from {state} can go to {either(allowed)}, not {move.target}"

    def _missing(self, condition: str, move: Move) -> str:
        what, hint = _NEEDS.get(condition, (f"{condition} to hold", ""))
        if condition == "has_summary":
            hint = _SUMMARY_HINTS.get(move.trigger, hint)
        if condition == "is_assigned":
            return f"{move.name} needs {what}: #take it, or #assign <who>"
        if condition == "not_just_thanks":
            return "a thank-you does not reopen the ticket (a technician can #reopen it)"
        aimed = f" to {move.target}" if move.target else ""
        return f"{move.name} needs {what}: {move.name}{aimed} {hint}"

    def _rules(self, state: str, trigger: str) -> list[Transition]:
        return [t for t in self._wf.transitions
                if t.trigger == trigger and state in sources(t, self._working)]

    def _back(self, ticket: TicketFacts) -> str | None:
        return ticket.return_state if ticket.return_state in self._working else None

    def _targets(self, ticket: TicketFacts, rules: list[Transition]) -> list[str]:
        back = self._back(ticket)
        found = [back if d == PREVIOUS else d for r in rules for d in r.dest]
        return list(dict.fromkeys(d for d in found if d is not None))

    def _possible(self, state: str, team: str | None) -> str:
        legal = self._moves.triggers_from(state)
        names = [n for n, c in self._wf.commands.items()
                 if c.trigger in legal and (team is None or may_use(c, team))]
        return f"possible here: {tags(names)}" if names else "no command moves a ticket from here"

    # ------------------------------------------------------------ the ends of the ladder
    def _edge(self, ticket: TicketFacts, trigger: str) -> str | None:
        tier = self._tiers.get(ticket.state)
        if tier is None or not self._tiers:
            return None
        climbs = self._direction(trigger)
        if climbs > 0 and tier == max(self._tiers.values()):
            return f"{ticket.state} is the last tier{self._then(ticket)}"
        if climbs < 0 and tier == min(self._tiers.values()):
            return f"{ticket.state} is the first tier"
        return None

    def _direction(self, trigger: str) -> int:
        """+1 if `trigger` climbs the tier ladder (judged by its first tier change), -1 if down."""
        steps = (self._step(s, d) for t in self._wf.transitions if t.trigger == trigger
                 for s in sources(t, self._working) for d in t.dest)
        return next((step for step in steps if step), 0)

    def _step(self, source: str, dest: str) -> int:
        if dest not in self._tiers:
            return 0
        change = self._tiers[dest] - self._tiers.get(source, 0)  # an untiered source counts as 0
        return (change > 0) - (change < 0)

    def _then(self, ticket: TicketFacts) -> str:
        timeout = self._wf.states[ticket.state].timeout
        if timeout is None:
            return ""
        after = timeout.spell_limit(ticket.priority)
        return f", where the clock fires {timeout.then} after {after}"
