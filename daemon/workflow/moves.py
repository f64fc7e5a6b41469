"""The one shared `transitions.Machine` of a workflow: which state a trigger leads to, if any.

The workflow's richer transitions become plain `transitions` ones, each guarded by small checks:
- `dest: [a, b]` becomes one transition per destination, in order; the event's target picks one,
  and without a target only the first passes;
- `dest: previous` becomes one transition per working state, passing only for the ticket's
  `return_state`;
- `source: "*"` becomes one transition per state that is not final;
- `condition` becomes a check from CHECKS, evaluated after the destination checks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from transitions import Machine

from daemon.workflow.facts import TicketFacts
from daemon.workflow.model import ALL_SOURCES, PREVIOUS, Transition, Workflow
from daemon.workflow.thanks import just_thanks


@dataclass(frozen=True)
class Move:
    """A request to fire `trigger`: who asks, why, and where to (None: the first destination)."""

    trigger: str
    actor: str
    reason: str = ""  # the event's reason; also the summary/reason that conditions look for
    target: str | None = None
    label: str = ""  # how messages name the request: "#resolve", or the bare trigger
    team: str | None = None  # the actor's team, when a technician asks
    argument: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.label or self.trigger


Check = Callable[[TicketFacts, Move], bool]


def _has_text(ticket: TicketFacts, move: Move) -> bool:
    # A command's argument, a timeout's reason, "the requester replied": only commands can be empty.
    return bool(move.reason.strip())


def _is_assigned(ticket: TicketFacts, move: Move) -> bool:
    return bool(ticket.assignee)


def _not_just_thanks(ticket: TicketFacts, move: Move) -> bool:
    # The reply's text is the move's argument; anything but a plain thank-you passes.
    return not just_thanks(move.argument)


# The engine's side of model.CONDITIONS.
CHECKS: dict[str, Check] = {
    "has_summary": _has_text,
    "has_reason": _has_text,
    "is_assigned": _is_assigned,
    "not_just_thanks": _not_just_thanks,
}


def working_states(workflow: Workflow) -> tuple[str, ...]:
    return tuple(name for name, state in workflow.states.items() if not state.final)


def sources(transition: Transition, working: tuple[str, ...]) -> tuple[str, ...]:
    return working if ALL_SOURCES in transition.source else transition.source


def _aimed(index: int, dest: str) -> Check:
    def check(ticket: TicketFacts, move: Move) -> bool:
        return move.target == dest if move.target is not None else index == 0
    return check


def _returns(index: int, back: str) -> Check:
    aimed = _aimed(index, back)

    def check(ticket: TicketFacts, move: Move) -> bool:
        return ticket.return_state == back and aimed(ticket, move)
    return check


def _variants(trigger: str, source: str, index: int, dest: str, extra: list[Check],
              working: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    if dest == PREVIOUS:
        pairs = [(back, _returns(index, back)) for back in working]
    else:
        pairs = [(dest, _aimed(index, dest))]
    for to, aimed in pairs:
        yield {"trigger": trigger, "source": source, "dest": to, "conditions": [aimed, *extra]}


def expand(workflow: Workflow) -> tuple[dict[str, Any], ...]:
    """The workflow's transitions as plain `transitions` ones, in the workflow's order."""
    working = working_states(workflow)
    specs: list[dict[str, Any]] = []
    for t in workflow.transitions:
        if t.condition is not None and t.condition not in CHECKS:
            raise ValueError(f"transition {t.trigger}: unknown condition {t.condition!r}")
        extra = [CHECKS[t.condition]] if t.condition else []
        for source in sources(t, working):
            for index, dest in enumerate(t.dest):
                specs.extend(_variants(t.trigger, source, index, dest, extra, working))
    return tuple(specs)


class _Token:
    """The reusable model: it carries a ticket's state into the machine and back out."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = ""


class Moves:
    """One Machine for the whole workflow; tickets pass through a per-thread token."""

    def __init__(self, workflow: Workflow) -> None:
        self.spec = expand(workflow)
        self.machine = Machine(model=None, states=list(workflow.states), initial=workflow.initial,
                               transitions=list(self.spec), auto_transitions=False)
        self._from = {s: tuple(self.machine.get_triggers(s)) for s in workflow.states}
        self._legal = {s: frozenset(triggers) for s, triggers in self._from.items()}
        self._local = threading.local()

    def triggers_from(self, state: str) -> tuple[str, ...]:
        return self._from.get(state, ())

    def can(self, state: str, trigger: str) -> bool:
        return trigger in self._legal.get(state, ())

    def fire(self, ticket: TicketFacts, move: Move) -> str | None:
        """The state `move` leads the ticket to, or None if every guard refused. Needs can()."""
        token = self._token()
        token.state = ticket.state
        if self.machine.events[move.trigger].trigger(token, ticket, move):
            return token.state
        return None

    def _token(self) -> _Token:
        token: _Token | None = getattr(self._local, "token", None)
        if token is None:
            token = self._local.token = _Token()
        return token
