"""Draw a workflow as Mermaid, Graphviz dot, or SVG (through the `dot` binary).

Pure text generation from the Workflow model; the daemon never draws (no diagram machine
inside it). Both formats are built from the same list of edges so they always agree.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from daemon.config.durations import format_duration
from daemon.workflow.model import ALL_SOURCES, PREVIOUS, State, Timeout, Transition, Workflow

GRAPHVIZ_MISSING = "Graphviz is not installed: apt-get install graphviz, or use --format mermaid"
FORMATS = ("mermaid", "dot", "svg")


class GraphError(Exception):
    """Drawing failed in a way the user can fix (no Graphviz, dot refused the input)."""


@dataclass(frozen=True)
class Edge:
    source: str
    dest: str  # a state name, or PREVIOUS for "back to the working state it came from"
    labels: tuple[str, ...]
    timeout: bool = False


# ------------------------------------------------------------------ the shared edge list

def sources(wf: Workflow, transition: Transition) -> list[str]:
    """A transition's source states, with "*" expanded to every state that is not final."""
    if ALL_SOURCES in transition.source:
        return [name for name, state in wf.states.items() if not state.final]
    return list(transition.source)


def transition_label(transition: Transition) -> str:
    guard = f" [{transition.condition}]" if transition.condition else ""
    return transition.trigger + guard


def timeout_label(timeout: Timeout) -> str:
    """E.g. "after 4h (business, P1 30m, P2 2h) → escalate"."""
    # Working time is counted in hours: a business "day" is not 24 hours.
    hours_only = timeout.clock == "business"
    details = [timeout.clock]
    if timeout.calendar:
        details.append(f"calendar {timeout.calendar}")
    details += [f"{p} {format_duration(d, hours_only)}" for p, d in timeout.per_priority.items()]
    after = format_duration(timeout.after, hours_only)
    return f"after {after} ({', '.join(details)}) → {timeout.then}"


def edges(wf: Workflow) -> list[Edge]:
    """Every move, one edge per (source, dest, kind), labels of parallel moves merged."""
    merged: dict[tuple[str, str, bool], list[str]] = {}
    for transition in wf.transitions:
        for source in sources(wf, transition):
            for dest in transition.dest:
                labels = merged.setdefault((source, dest, False), [])
                labels.append(transition_label(transition))
    for name, state in wf.states.items():
        if state.timeout is None:
            continue
        for dest in _timeout_dests(wf, name, state.timeout):
            merged.setdefault((name, dest, True), []).append(timeout_label(state.timeout))
    return [Edge(s, d, tuple(dict.fromkeys(labels)), t) for (s, d, t), labels in merged.items()]


def _timeout_dests(wf: Workflow, name: str, timeout: Timeout) -> list[str]:
    """Where the timeout's trigger takes a ticket from `name`: each matching transition's
    default (first) destination, since a timer names no destination."""
    return [t.dest[0] for t in wf.transitions
            if t.trigger == timeout.then and name in sources(wf, t)]


def state_lines(state: State) -> list[str]:
    """The facts shown under a state's name."""
    if state.final:
        return ["final"]
    # No colons: Mermaid reads the first one of a line as the start of a description.
    lines = []
    if state.team:
        lines.append(f"team {state.team}" + (f", tier {state.tier}" if state.tier else ""))
    lines.append(f"clock {state.clock}")
    return lines


def _uses_previous(all_edges: list[Edge]) -> bool:
    return any(edge.dest == PREVIOUS for edge in all_edges)


# ------------------------------------------------------------------ Mermaid

def to_mermaid(wf: Workflow) -> str:
    """A Mermaid stateDiagram-v2 (renders on GitHub and GitLab)."""
    ids = _mermaid_ids(wf)
    all_edges = edges(wf)
    out = ["---", f"title: {wf.name} v{wf.version}", "---", "stateDiagram-v2"]
    for name, state in wf.states.items():
        if ids[name] != name:
            out.append(f'    state "{name}" as {ids[name]}')
        out += [f"    {ids[name]} : {line}" for line in state_lines(state)]
    if _uses_previous(all_edges):
        out.append(f'    state "previous working state" as {ids[PREVIOUS]}')
        out.append(f"    note right of {ids[PREVIOUS]} : back to the last state whose clock ran")
    out.append(f"    [*] --> {ids.get(wf.initial, wf.initial)}")
    for edge in all_edges:
        marker = "⏱ " if edge.timeout else ""
        label = marker + " / ".join(edge.labels)
        out.append(f"    {ids[edge.source]} --> {ids[edge.dest]} : {_mermaid_text(label)}")
    out += [f"    {ids[name]} --> [*]" for name, state in wf.states.items() if state.final]
    return "\n".join(out) + "\n"


def _mermaid_ids(wf: Workflow) -> dict[str, str]:
    """Mermaid ids allow letters, digits and _ only; state names may hold . and -."""
    ids: dict[str, str] = {}
    for name in [*wf.states, PREVIOUS]:
        base = candidate = re.sub(r"\W", "_", name)
        n = 1
        while candidate in ids.values() or (name == PREVIOUS and candidate in wf.states):
            candidate, n = f"{base}_{n}", n + 1
        ids[name] = candidate
    return ids


def _mermaid_text(text: str) -> str:
    # ":" starts a label and ";" ends a statement in Mermaid; neither may appear inside one.
    return text.replace(";", ",").replace(":", "")


# ------------------------------------------------------------------ Graphviz

def to_dot(wf: Workflow) -> str:
    """A Graphviz digraph: timeouts dashed, final states double-bordered."""
    all_edges = edges(wf)
    out = [
        f"digraph {_q(f'{wf.name} v{wf.version}')} {{",
        f"  label={_q(f'{wf.name} v{wf.version}')}; labelloc=t; fontname=Helvetica;",
        "  node [shape=box, style=rounded, fontname=Helvetica, fontsize=11];",
        "  edge [fontname=Helvetica, fontsize=9];",
        '  "__start" [shape=point, width=0.15, label=""];',
        f'  "__start" -> {_q(wf.initial)};',
    ]
    for name, state in wf.states.items():
        extra = ", peripheries=2" if state.final else ""
        out.append(f"  {_q(name)} [label={_q(chr(10).join([name, *state_lines(state)]))}{extra}];")
    if _uses_previous(all_edges):
        out.append(f'  {_q(PREVIOUS)} [shape=ellipse, style=dashed, '
                   f'label="previous\\nworking state"];')
    for edge in all_edges:
        style = ", style=dashed, color=gray30, fontcolor=gray30" if edge.timeout else ""
        label = _q("\n".join(edge.labels))
        out.append(f"  {_q(edge.source)} -> {_q(edge.dest)} [label={label}{style}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _q(text: str) -> str:
    """A quoted dot ID; newlines become dot's centred line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


# ------------------------------------------------------------------ SVG

def to_svg(wf: Workflow, timeout: float = 60) -> bytes:
    """Render to_dot(wf) with Graphviz; GraphError when it is missing or fails."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphError(GRAPHVIZ_MISSING)
    try:
        result = subprocess.run([dot, "-Tsvg"], input=to_dot(wf).encode(),
                                capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraphError(f"Graphviz failed: {exc}") from None
    if result.returncode != 0:
        first = (result.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[0]
        raise GraphError(f"Graphviz failed: {first}")
    return result.stdout


def render(wf: Workflow, fmt: str) -> bytes:
    """The drawing in `fmt` (one of FORMATS) as bytes ready to write."""
    if fmt == "svg":
        return to_svg(wf)
    if fmt == "dot":
        return to_dot(wf).encode()
    if fmt == "mermaid":
        return to_mermaid(wf).encode()
    raise GraphError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
