"""Validate a workflow file and lint its logic; every problem names a file and line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pydantic import ValidationError

from daemon.config.problems import Problem
from daemon.config.validation import model_errors, validation_problems
from daemon.config.yamlsource import Source
from daemon.workflow.model import (
    ALL_SOURCES,
    CONDITIONS,
    NOTIFY_EVENTS,
    PREVIOUS,
    TriageRule,
    Workflow,
)


@dataclass(frozen=True)
class WorkflowContext:
    """What a workflow may refer to outside itself."""

    # None: the file that defines them failed to load, so names are not checked against it.
    teams: frozenset[str] | None
    calendars: frozenset[str] | None
    # Template name -> the file names that are missing for it (empty: complete).
    templates: dict[str, tuple[str, ...]]
    has_escalation_manager: bool
    templates_dir: str = "mail_templates"


def validate_workflow(
    source: Source, context: WorkflowContext
) -> tuple[Workflow | None, list[Problem]]:
    """Parse `source` into a Workflow and lint it; the workflow is None when it is unusable."""
    try:
        workflow = Workflow.model_validate(source.data)
    except ValidationError as exc:
        return None, validation_problems(model_errors(exc, source.data, Workflow), source)
    problems = list(_lint(workflow, source, context))
    return (None if problems else workflow), problems


def suggest(name: str, choices: Iterable[str], what: str) -> str:
    """A fix hint: the closest known name, or the list of known names."""
    known = sorted(choices)
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"known {what}: {', '.join(known)}" if known else f"no {what} are defined"


def _lint(wf: Workflow, src: Source, ctx: WorkflowContext) -> Iterator[Problem]:
    yield from _check_basics(wf, src)
    yield from _check_states(wf, src, ctx)
    yield from _check_transitions(wf, src)
    yield from _check_graph(wf, src)
    yield from _check_timeouts(wf, src, ctx)
    yield from _check_commands(wf, src, ctx)
    yield from _check_triage(wf, src)
    yield from _check_notify(wf, src, ctx)
    yield from _check_sla(wf, src, ctx)


def _check_basics(wf: Workflow, src: Source) -> Iterator[Problem]:
    if wf.initial not in wf.states:
        yield src.problem(("initial",), f"initial state {wf.initial!r} is not defined",
                          suggest(wf.initial, wf.states, "states"))
    if wf.default_priority not in wf.priorities:
        yield src.problem(("default_priority",),
                          f"default priority {wf.default_priority!r} is not in priorities",
                          f"use one of {', '.join(wf.priorities)}")


def _check_states(wf: Workflow, src: Source, ctx: WorkflowContext) -> Iterator[Problem]:
    for name, state in wf.states.items():
        where = ("states", name)
        if state.final and state.timeout:
            yield src.problem(where + ("timeout",), f"final state {name!r} has a timeout",
                              "remove it: nothing can move a ticket out of a final state")
        if not state.final and state.team is None:
            yield src.problem(where, f"working state {name!r} has no owning team",
                              "add `team: <name>`: every ticket must have an owner")
        if state.team is not None and ctx.teams is not None and state.team not in ctx.teams:
            yield src.problem(where + ("team",),
                              f"team {state.team!r} is not in config/teams.yaml",
                              suggest(state.team, ctx.teams, "teams"))


# Names the state machine library itself puts on every ticket model.
RESERVED_TRIGGERS = frozenset({"state", "trigger", "machine"})
RESERVED_PREFIXES = ("is_", "may_")


def _check_transitions(wf: Workflow, src: Source) -> Iterator[Problem]:
    for i, tr in enumerate(wf.transitions):
        where = ("transitions", i)
        if tr.trigger in RESERVED_TRIGGERS or tr.trigger.startswith(RESERVED_PREFIXES):
            yield src.problem(where + ("trigger",), f"trigger name {tr.trigger!r} is reserved",
                              "pick another name; not state, trigger, machine, is_*, may_*")
        for state in tr.source:
            if state != ALL_SOURCES and state not in wf.states:
                yield src.problem(where + ("source",), f"unknown source state {state!r}",
                                  suggest(state, wf.states, "states"))
            elif state in wf.states and wf.states[state].final:
                yield src.problem(where + ("source",),
                                  f"transition out of final state {state!r}",
                                  "remove it, or drop `final: true` from that state")
        if PREVIOUS in tr.dest and len(tr.dest) > 1:
            yield src.problem(where + ("dest",), "`previous` cannot be mixed with other states",
                              "write `dest: previous` on its own")
        for state in tr.dest:
            if state != PREVIOUS and state not in wf.states:
                yield src.problem(where + ("dest",), f"unknown destination state {state!r}",
                                  suggest(state, wf.states, "states"))
        if tr.condition is not None and tr.condition not in CONDITIONS:
            yield src.problem(where + ("condition",), f"unknown condition {tr.condition!r}",
                              suggest(tr.condition, CONDITIONS, "conditions"))


def sources_of(wf: Workflow, sources: tuple[str, ...]) -> list[str]:
    """Expand `*` to every non-final state."""
    if ALL_SOURCES in sources:
        return [name for name, state in wf.states.items() if not state.final]
    return list(sources)


def _check_graph(wf: Workflow, src: Source) -> Iterator[Problem]:
    edges: dict[str, set[str]] = {name: set() for name in wf.states}
    for tr in wf.transitions:
        for source in sources_of(wf, tr.source):
            # `previous` only returns to a state already visited: it reaches nothing new.
            edges.setdefault(source, set()).update(d for d in tr.dest if d != PREVIOUS)
    reached = _reachable(wf.initial, edges)
    for name, state in wf.states.items():
        if wf.initial in wf.states and name not in reached:
            yield src.problem(("states", name), f"state {name!r} cannot be reached from "
                              f"the initial state {wf.initial!r}",
                              "add a transition into it, or remove it")
        if not state.final and not _has_way_out(wf, name):
            yield src.problem(("states", name), f"state {name!r} has no way out",
                              "add a transition from it, or mark it `final: true`")


def _reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _has_way_out(wf: Workflow, state: str) -> bool:
    return any(state in sources_of(wf, tr.source) and tr.dest != (state,)
               for tr in wf.transitions)


def triggers_from(wf: Workflow, state: str) -> set[str]:
    return {tr.trigger for tr in wf.transitions if state in sources_of(wf, tr.source)}


def _check_timeouts(wf: Workflow, src: Source, ctx: WorkflowContext) -> Iterator[Problem]:
    for name, state in wf.states.items():
        timeout = state.timeout
        if timeout is None:
            continue
        where = ("states", name, "timeout")
        possible = triggers_from(wf, name)
        if timeout.then not in possible:
            yield src.problem(where + ("then",), f"timeout of {name!r} fires {timeout.then!r}, "
                              f"which state {name!r} has no transition for",
                              _trigger_hint(timeout.then, possible))
        for priority in timeout.per_priority:
            if priority not in wf.priorities:
                yield src.problem(where + ("per_priority", priority),
                                  f"unknown priority {priority!r}",
                                  f"use one of {', '.join(wf.priorities)}")
        yield from _check_business_units(src, where, timeout.clock)
        calendar = timeout.calendar or "default"
        known = ctx.calendars
        if timeout.clock == "business" and known is not None and calendar not in known:
            yield src.problem(where + (("calendar",) if timeout.calendar else ()),
                              f"calendar {calendar!r} is not in config/settings.yaml",
                              suggest(calendar, known, "calendars"))
        try:
            timeout.reason.format(after="1h")
        except (KeyError, IndexError, ValueError) as exc:
            yield src.problem(where + ("reason",), f"reason has a bad placeholder: {exc}",
                              "the only placeholder is {after}; write {{ and }} for braces")


def _check_business_units(src: Source, where: tuple[str, ...], clock: str) -> Iterator[Problem]:
    """`2d` on a business clock would be 48 working hours (a week of office days): refuse it."""
    if clock != "business":
        return
    for path, value in _durations(_raw(src, where), where):
        if any(unit in value.lower() for unit in "dw"):
            yield src.problem(path, f"{value!r} on a business clock counts 24 working "
                              "hours per day", "write working hours (16h for two 8-hour days), "
                              "or use `clock: wall`")


_DURATION_KEYS = ("after", "every", "per_priority", "first_response", "resolution", "remind")


def _raw(src: Source, where: tuple[str, ...]) -> object:
    node: object = src.data
    for part in where:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _durations(node: object, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every duration as written under `node` (strings under the duration keys)."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key not in _DURATION_KEYS and path[-1] not in _DURATION_KEYS:
            continue
        if isinstance(value, str):
            yield path + (key,), value
        else:
            yield from _durations(value, path + (key,))


def _check_sla(wf: Workflow, src: Source, ctx: WorkflowContext) -> Iterator[Problem]:
    sla = wf.sla
    for name, targets in (("first_response", sla.first_response),
                          ("resolution", sla.resolution)):
        for priority in targets:
            if priority not in wf.priorities:
                yield src.problem(("sla", name, priority), f"unknown priority {priority!r}",
                                  f"use one of {', '.join(wf.priorities)}")
    calendar = sla.calendar or "default"
    if sla.clock == "business" and ctx.calendars is not None and calendar not in ctx.calendars:
        yield src.problem(("sla", "calendar"), f"calendar {calendar!r} is not in "
                          "config/settings.yaml", suggest(calendar, ctx.calendars, "calendars"))
    yield from _check_business_units(src, ("sla",), sla.clock)


def _trigger_hint(trigger: str, possible: set[str]) -> str:
    if not possible:
        return "the state has no transitions at all"
    return f"add a transition with this trigger from the state, or use one of: " \
           f"{', '.join(sorted(possible))}"


def _check_commands(wf: Workflow, src: Source, ctx: WorkflowContext) -> Iterator[Problem]:
    triggers = {tr.trigger for tr in wf.transitions}
    for name, command in wf.commands.items():
        where = ("commands", name)
        if command.trigger is not None and command.trigger not in triggers:
            yield src.problem(where + ("trigger",),
                              f"command #{name} maps to unknown trigger {command.trigger!r}",
                              suggest(command.trigger, triggers, "triggers"))
        for i, state in enumerate(command.states):
            if state not in wf.states:
                yield src.problem(where + ("states", i), f"command #{name} names unknown "
                                  f"state {state!r}", suggest(state, wf.states, "states"))
        if command.teams != "all" and ctx.teams is not None:
            for i, team in enumerate(command.teams):
                if team not in ctx.teams:
                    yield src.problem(where + ("teams", i),
                                      f"team {team!r} is not in config/teams.yaml",
                                      suggest(team, ctx.teams, "teams"))


def _check_triage(wf: Workflow, src: Source) -> Iterator[Problem]:
    routes = {d for tr in wf.transitions if tr.trigger == "route"
              and wf.initial in sources_of(wf, tr.source) for d in tr.dest}
    outcomes = [(("triage", "default"), wf.triage.default)]
    outcomes += [(("triage", "rules", i), rule) for i, rule in enumerate(wf.triage.rules)]
    for where, outcome in outcomes:
        if outcome.priority is not None and outcome.priority not in wf.priorities:
            yield src.problem(where + ("priority",), f"unknown priority {outcome.priority!r}",
                              f"use one of {', '.join(wf.priorities)}")
        if outcome.route is not None and outcome.route not in routes:
            fix = (f"routes from {wf.initial!r}: {', '.join(sorted(routes))}" if routes else
                   f"add a transition `{{trigger: route, source: {wf.initial}, "
                   f"dest: [{outcome.route}]}}`")
            yield src.problem(where + ("route",),
                              f"triage cannot route to {outcome.route!r}", fix)
    for i, rule in enumerate(wf.triage.rules):
        yield from _check_link_rule(wf, src, ("triage", "rules", i), rule)


def _check_link_rule(wf: Workflow, src: Source, where: tuple[str | int, ...],
                     rule: TriageRule) -> Iterator[Problem]:
    """`link: true` needs a look-alike to link to, and does not route: a report's own clock
    is stopped (its incident's governs), so a handoff of it would go to nobody's work."""
    if not rule.link:
        return
    if rule.match.looks_like_open is None:
        yield src.problem(where + ("link",), f"triage rule {rule.name!r} links, but to what?",
                          "add `looks_like_open: 0.8` to its match (how alike an open ticket "
                          "must be)")
    if rule.route is not None:
        yield src.problem(where + ("route",), f"triage rule {rule.name!r} both links and "
                          "routes; a linked report follows its incident",
                          "drop `route` from the rule, or `link`")


def _check_notify(wf: Workflow, src: Source, ctx: WorkflowContext) -> Iterator[Problem]:
    events = set(NOTIFY_EVENTS) | {tr.trigger for tr in wf.transitions}
    for event, mails in wf.notify.items():
        if event not in events:
            yield src.problem(("notify", event), f"unknown event {event!r}",
                              suggest(event, events, "events (built-in ones and triggers)"))
        for i, mail in enumerate(mails):
            where = ("notify", event, i)
            missing = ctx.templates.get(mail.template)
            if missing is None:
                yield src.problem(where + ("template",), f"template {mail.template!r} does not "
                                  f"exist in {ctx.templates_dir}/",
                                  suggest(mail.template, ctx.templates, "templates"))
            elif missing:
                yield src.problem(where + ("template",), f"template {mail.template!r} is "
                                  f"missing {', '.join(missing)}",
                                  "every template needs a plain-text and an HTML part")
            for j, state in enumerate(mail.only_in):
                if state not in wf.states:
                    yield src.problem(where + ("only_in", j), f"unknown state {state!r}",
                                      suggest(state, wf.states, "states"))
            if mail.to == "escalation_manager" and not ctx.has_escalation_manager:
                yield src.problem(where + ("to",), "no escalation manager is configured",
                                  "add `escalation_manager: {name, address}` to "
                                  "config/teams.yaml")
    if wf.bounce_guard is not None and not wf.notify.get("bounce_flagged"):
        yield src.problem(("bounce_guard",), "bounce_guard is set but nobody is told",
                          "add `bounce_flagged: [{template: bounce_alert, "
                          "to: escalation_manager}]` under notify")
