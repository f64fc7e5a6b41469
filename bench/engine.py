"""Decisions per second of the workflow engine: one shared Machine against a Machine per ticket.

    python bench/engine.py [--events 100000] [--tickets 10000] [--repeats 5] [--seed 7]

A stream of mixed events (technicians' commands, requester replies, timer firings, a few new
tickets) is generated once by simulating it with the engine, so that most events make sense for
the ticket's state at that moment (about one in ten is refused, as in real life). Every run then
replays the same stream from the same ticket population:

- shared: the engine as shipped, one `transitions.Machine` for the workflow;
- per ticket: the same engine, except that each decision builds a Machine for its ticket, as a
  daemon must that holds a Machine per ticket object but loads tickets from the database per event.

Both must reach the same final states; the figures are medians of `--repeats` runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure this checkout, not whatever `daemon` is installed

from transitions import Machine  # noqa: E402

from daemon.config.yamlsource import load_yaml  # noqa: E402
from daemon.workflow.engine import Engine  # noqa: E402
from daemon.workflow.facts import (  # noqa: E402
    CommandIssued,
    Event,
    NewTicket,
    RequesterReplied,
    TicketFacts,
    TimerFired,
)
from daemon.workflow.model import Workflow  # noqa: E402
from daemon.workflow.moves import Move, expand  # noqa: E402

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SUBJECTS = ["VPN drops every hour", "Forgot my password", "Email outage", "Printer jam",
            "Phishing mail?", "Laptop slow", "New starter needs an account", "Excel crashes"]
ACTIONS = [("take", ""), ("note", "called the user"), ("status", ""), ("assign", "morgan.lee"),
           ("priority", "P2")]
TEAMS = ["helpdesk", "tier1", "tier2", "tier3"]


class _Ticket:
    """A model object for the reference approach; the Machine gives it its trigger methods."""

    state: str
    trigger: Callable[..., bool]


class PerTicketEngine(Engine):
    """The reference: identical decisions, but a new Machine for the ticket at every decision."""

    def __init__(self, workflow: Workflow) -> None:
        super().__init__(workflow)
        self._spec = list(expand(workflow))
        self._names = list(workflow.states)

    def _fire(self, ticket: TicketFacts, move: Move) -> str | None:
        model = _Ticket()
        Machine(model=model, states=self._names, transitions=self._spec, initial=ticket.state,
                auto_transitions=False)
        return model.state if model.trigger(move.trigger, ticket, move) else None


@dataclass(frozen=True)
class Step:
    ref: str
    event: Event | NewTicket
    now: datetime


# ---------------------------------------------------------------- the stream
def _report(rng: random.Random, ref: str) -> NewTicket:
    return NewTicket(ref, f"user{rng.randrange(500)}@example.com", rng.choice(SUBJECTS), "Hi,")


def _command(rng: random.Random, engine: Engine, wf: Workflow, state: str) -> CommandIssued:
    legal = set(engine.triggers_from(state))
    moves = [n for n, c in wf.commands.items() if c.trigger in legal]
    if moves and rng.random() < 0.6:
        name, argument = rng.choice(moves), "restarted the service"
    elif rng.random() < 0.8:
        name, argument = rng.choice(ACTIONS)
    else:  # a mistake: a move from the wrong state, or a missing summary
        name, argument = rng.choice(["escalate", "reopen", "resolve", "vendor"]), ""
    team = wf.states[state].team or "helpdesk"
    return CommandIssued(name, f"tech@{team}.example.com", team if rng.random() < 0.9 else
                         rng.choice(TEAMS), argument)


def _timer(rng: random.Random, wf: Workflow, state: str) -> TimerFired:
    kinds: list[Literal["remind", "warn", "expire"]] = ["remind", "warn", "expire"]
    kind = rng.choices(kinds, [4, 3, 3])[0]
    stale = rng.random() < 0.1 or wf.states[state].timeout is None
    return TimerFired(kind, rng.choice(list(wf.states)) if stale else state, 1)


def _event(rng: random.Random, engine: Engine, wf: Workflow, state: str) -> Event:
    roll = rng.random()
    if roll < 0.55:
        return _command(rng, engine, wf, state)
    if roll < 0.70:
        return RequesterReplied("thanks, here are the details")
    return _timer(rng, wf, state)


def generate(wf: Workflow, tickets: int, events: int,
             seed: int) -> tuple[dict[str, TicketFacts], list[Step]]:
    """The starting tickets, and a stream that fits their states as it unfolds."""
    rng, engine = random.Random(seed), Engine(wf)
    start = {f"TD-{n}": engine.open(_report(rng, f"TD-{n}"), START).ticket for n in range(tickets)}
    live, refs, stream = dict(start), list(start), []
    for i in range(events):
        now = START + timedelta(seconds=i)
        if rng.random() < 0.01:
            ref = f"TD-{len(refs)}"
            refs.append(ref)
            step = Step(ref, _report(rng, ref), now)
        else:
            ref = rng.choice(refs)
            step = Step(ref, _event(rng, engine, wf, live[ref].state), now)
        live[ref] = apply(engine, live, step).ticket
        stream.append(step)
    return start, stream


# ---------------------------------------------------------------- replaying
def apply(engine: Engine, tickets: dict[str, TicketFacts], step: Step) -> Any:
    if isinstance(step.event, NewTicket):
        return engine.open(step.event, step.now)
    return engine.handle(tickets[step.ref], step.event, step.now)


def replay(engine: Engine, start: dict[str, TicketFacts],
           stream: list[Step]) -> tuple[float, dict[str, TicketFacts], int]:
    tickets, refused = dict(start), 0
    began = time.perf_counter()
    for step in stream:
        decision = apply(engine, tickets, step)
        tickets[step.ref] = decision.ticket
        refused += decision.refusal is not None
    return time.perf_counter() - began, tickets, refused


def measure(engine: Engine, start: dict[str, TicketFacts], stream: list[Step],
            repeats: int) -> tuple[float, dict[str, TicketFacts], int]:
    runs = [replay(engine, start, stream) for _ in range(repeats)]
    rate = statistics.median(len(stream) / seconds for seconds, _, _ in runs)
    return rate, runs[-1][1], runs[-1][2]


def describe(stream: list[Step]) -> str:
    kinds = Counter(type(step.event).__name__ for step in stream)
    return ", ".join(f"{kinds[k]:,} {label}" for k, label in [
        ("CommandIssued", "commands"), ("RequesterReplied", "replies"),
        ("TimerFired", "timer firings"), ("NewTicket", "new tickets")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    wf = Workflow.model_validate(load_yaml(ROOT / "workflows/it-support.yaml").data)
    start, stream = generate(wf, args.tickets, args.events, args.seed)
    print(f"{len(stream):,} events over {args.tickets:,} tickets: {describe(stream)}")
    shared, shared_end, refused = measure(Engine(wf), start, stream, args.repeats)
    mix = Counter(t.state for t in shared_end.values()).most_common()
    print(f"  refused: {refused:,} ({refused / len(stream):.0%}); tickets end in "
          + ", ".join(f"{state} {n:,}" for state, n in mix))
    print(f"shared Machine:      {shared:>9,.0f} decisions/s  (median of {args.repeats})")
    single, single_end, _ = measure(PerTicketEngine(wf), start, stream, args.reference_repeats)
    print(f"Machine per ticket:  {single:>9,.0f} decisions/s  (median of {args.reference_repeats})")
    print(f"ratio:               {shared / single:>9.1f}x")
    if shared_end != single_end:
        sys.exit("the two approaches ended in different ticket states: the benchmark is wrong")


if __name__ == "__main__":
    main()
