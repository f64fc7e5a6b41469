"""Workflow drawings: every state and trigger appears; timeouts dashed; SVG through Graphviz."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from daemon.config.yamlsource import load_yaml
from daemon.workflow.graph import (
    GRAPHVIZ_MISSING,
    GraphError,
    edges,
    render,
    to_dot,
    to_mermaid,
    to_svg,
)
from daemon.workflow.model import Workflow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shipped() -> Workflow:
    return Workflow.model_validate(load_yaml(ROOT / "workflows" / "it-support.yaml").data)


def small(**changes: object) -> Workflow:
    data: dict[str, object] = {
        "name": "mini", "version": 2, "initial": "new",
        "states": {
            "new": {"team": "desk", "timeout": {"after": "4h", "then": "escalate"}},
            "tier-2.x": {"team": "second"},
            "waiting": {"team": "desk", "clock": "paused"},
            "done": {"final": True, "clock": "stopped"},
        },
        "transitions": [
            {"trigger": "escalate", "source": "new", "dest": ["tier-2.x", "waiting"]},
            {"trigger": "wait", "source": ["new", "tier-2.x"], "dest": "waiting"},
            {"trigger": "replied", "source": "waiting", "dest": "previous"},
            {"trigger": "finish", "source": "*", "dest": "done", "condition": "has_summary"},
        ],
    }
    data.update(changes)
    return Workflow.model_validate(data)


@pytest.mark.parametrize("draw", [to_mermaid, to_dot])
def test_every_state_and_trigger_is_drawn(shipped: Workflow, draw) -> None:  # type: ignore[no-untyped-def]
    text = draw(shipped)
    for state in shipped.states:
        assert state in text
    for transition in shipped.transitions:
        assert transition.trigger in text
    for state in shipped.states.values():
        if state.team:
            assert f"team {state.team}" in text


def test_mermaid_shape(shipped: Workflow) -> None:
    text = to_mermaid(shipped)
    assert "stateDiagram-v2" in text
    assert "[*] --> triage" in text
    assert "closed --> [*]" in text
    assert "resolve [has_summary]" in text
    assert "after 4h (business, P1 30m, P2 2h, P4 16h) → escalate" in text


def test_dot_marks_timeouts_and_final_states(shipped: Workflow) -> None:
    text = to_dot(shipped)
    assert text.startswith('digraph "it-support v5" {')
    assert '"closed" [label="closed\\nfinal", peripheries=2];' in text
    timeout_line = next(line for line in text.splitlines() if "after 8h" in line)
    assert timeout_line.startswith('  "tier2" -> "tier3"') and "style=dashed" in timeout_line


def test_star_sources_expand_to_non_final_states() -> None:
    finish = {(e.source, e.dest) for e in edges(small()) if "finish [has_summary]" in e.labels}
    assert finish == {("new", "done"), ("tier-2.x", "done"), ("waiting", "done")}


def test_dest_lists_expand_and_timeouts_take_the_default() -> None:
    all_edges = edges(small())
    moves = {(e.source, e.dest) for e in all_edges if not e.timeout and "escalate" in e.labels}
    assert moves == {("new", "tier-2.x"), ("new", "waiting")}
    [timeout] = [e for e in all_edges if e.timeout]
    assert (timeout.source, timeout.dest) == ("new", "tier-2.x")
    assert timeout.labels == ("after 4h (business) → escalate",)


def test_previous_is_a_pseudo_state() -> None:
    mermaid, dot = to_mermaid(small()), to_dot(small())
    assert "waiting --> previous : replied" in mermaid
    assert 'state "previous working state" as previous' in mermaid
    assert '"waiting" -> "previous" [label="replied"]' in dot


def test_mermaid_ids_are_safe_for_odd_state_names() -> None:
    text = to_mermaid(small())
    assert 'state "tier-2.x" as tier_2_x' in text
    assert "new --> tier_2_x : escalate" in text


def test_dot_quotes_are_escaped() -> None:
    wf = small(name="quote", triage={"rules": []})
    assert '\\"' not in to_dot(wf)  # nothing to escape in ordinary names
    assert render(wf, "dot").decode() == to_dot(wf)


def _dot_required() -> bool:
    return os.environ.get("CI") == "true"


def test_svg_through_graphviz(shipped: Workflow) -> None:
    if shutil.which("dot") is None:
        if _dot_required():
            pytest.fail("CI=true but Graphviz `dot` is not installed (.ci/run installs it)")
        pytest.skip("Graphviz `dot` is not installed")
    svg = to_svg(shipped)
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    assert b"tier3" in svg and b"escalate" in svg


def test_svg_without_graphviz_says_how_to_fix(
    shipped: Workflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `dot` anywhere
    with pytest.raises(GraphError) as caught:
        to_svg(shipped)
    assert str(caught.value) == GRAPHVIZ_MISSING
