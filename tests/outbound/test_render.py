"""Templates: user text is data (never template source), HTML is escaped, undefined names are
errors, and `run.py check` reports template mistakes with file and line."""

from __future__ import annotations

import random
import re
import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from daemon.cli.main import main
from daemon.config.problems import ConfigError, Problem
from daemon.outbound.render import (
    Renderer,
    RenderError,
    sample_contexts,
    template_problems,
    tidy_text,
    when,
)
from daemon.site.config import load_config

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "mail_templates"
NAMES = sorted({p.name.split(".")[0] for p in TEMPLATES.glob("*.j2")})
INJECTIONS = ["{{ 7*7 }}", "{% for x in range(3) %}loop{% endfor %}", "{{ config }}",
              "{{ ''.__class__.__mro__ }}", "{# c #}{%- raw %}"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for folder in ("config", "workflows", "mail_templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def context(**changes: object) -> dict[str, object]:
    return {**sample_contexts()[0], **changes}


def test_every_shipped_template_has_both_parts_and_renders() -> None:
    assert len(NAMES) >= 10
    renderer = Renderer(TEMPLATES)
    for name in NAMES:
        for sample in sample_contexts():
            out = renderer.render(name, sample)
            assert "TD-42" in out.subject and "\n" not in out.subject
            assert out.text.strip() and out.html.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("name", NAMES)
def test_template_syntax_in_user_text_arrives_as_written(name: str, payload: str) -> None:
    out = Renderer(TEMPLATES).render(name, context(subject=f"VPN {payload} down",
                                                   reason=payload, argument=payload))
    assert f"VPN {payload} down" in out.subject
    assert "49" not in out.subject
    assert f"VPN {payload} down" in out.text or name.startswith("command_")


def test_template_syntax_in_notes_and_original_report_arrives_as_written() -> None:
    timeline = [{**sample_contexts()[0]["timeline"][1], "reason": "{{ 7*7 }} tried"}]
    original = {**sample_contexts()[0]["original"], "text": "{% if 1 %}x{% endif %}"}
    out = Renderer(TEMPLATES).render("escalation_handoff",
                                     context(timeline=timeline, original=original))
    assert "{{ 7*7 }} tried" in out.text and "{% if 1 %}x{% endif %}" in out.text
    assert "{{ 7*7 }} tried" in out.html


def test_user_text_is_escaped_in_html_and_plain_in_text() -> None:
    evil = '<script>alert("x")</script> & <b>bold</b>'
    out = Renderer(TEMPLATES).render("escalation_handoff", context(subject=evil, reason=evil))
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html
    assert "&amp; &lt;b&gt;bold&lt;/b&gt;" in out.html
    assert evil in out.text and evil in out.subject


def test_subject_loses_line_breaks() -> None:
    out = Renderer(TEMPLATES).render("acknowledgement",
                                     context(subject="a\r\nBcc: x@example.org\u2028b"))
    assert out.subject == "[TD-42] a Bcc: x@example.org b"


def test_undefined_variable_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "t.txt.j2").write_text("{% block subject %}s{% endblock %}\n"
                                       "{% block body %}\nok\n{{ nope }}\n{% endblock %}\n")
    (tmp_path / "t.html.j2").write_text("{% block body %}<p>x</p>{% endblock %}\n")
    with pytest.raises(RenderError, match=r"t\.txt\.j2:4: UndefinedError: 'nope' is undefined"):
        Renderer(tmp_path).render("t", {})


def test_sandbox_refuses_unsafe_attributes(tmp_path: Path) -> None:
    (tmp_path / "t.txt.j2").write_text(
        "{% block subject %}s{% endblock %}{% block body %}"
        "{{ ref.__class__.__init__.__globals__ }}{% endblock %}")
    (tmp_path / "t.html.j2").write_text("{% block body %}x{% endblock %}")
    with pytest.raises(RenderError, match="SecurityError|UndefinedError"):
        Renderer(tmp_path).render("t", {"ref": "TD-1"})


def test_variables_lists_what_a_template_reads() -> None:
    found = Renderer(TEMPLATES).variables("escalation_handoff")
    assert {"timeline", "original", "attachments", "ref"} <= found
    assert "timeline" not in Renderer(TEMPLATES).variables("acknowledgement")


# ------------------------------------------------------------------ check

def plant(path: Path, old: str, new: str) -> int:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    path.write_text(text.replace(old, new))
    return text[: text.index(old)].count("\n") + 1


def problems(tree: Path) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_config(tree, {})
    return caught.value.problems


def test_shipped_templates_have_no_problems() -> None:
    assert template_problems(TEMPLATES) == []


def test_check_reports_an_undefined_variable_with_file_and_line(
        tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tree / "mail_templates" / "reminder.txt.j2"
    line = plant(path, "  Requester:  {{ requester }}", "  Requester:  {{ requestor }}")
    assert main(["check", "--config", str(tree)]) == 1
    out = capsys.readouterr().out
    assert f"reminder.txt.j2:{line}: undefined template variable 'requestor'" in out


def test_check_reports_a_missing_key_of_a_context_value(tree: Path) -> None:
    path = tree / "mail_templates" / "escalation_handoff.html.j2"
    line = plant(path, "{{ original.sender }}, {{ original.at | when }}",
                 "{{ original.from }}, {{ original.at | when }}")
    found = [p for p in problems(tree) if p.file.endswith("escalation_handoff.html.j2")]
    assert [(p.line, "has no attribute 'from'" in p.message) for p in found] == [(line, True)]


def test_check_reports_a_template_that_fails_on_a_sparse_ticket(tree: Path) -> None:
    path = tree / "mail_templates" / "vendor_handoff.txt.j2"
    line = plant(path, "  Priority:  {{ priority }}", "  Priority:  {{ time_left.upper() }}")
    found = [p for p in problems(tree) if p.file.endswith("vendor_handoff.txt.j2")]
    assert found and found[0].line == line and "UndefinedError" in found[0].message


def test_check_reports_syntax_errors_and_missing_blocks(tree: Path) -> None:
    plant(tree / "mail_templates" / "reminder.html.j2", "{% endif %}</p>", "</p>")
    plant(tree / "mail_templates" / "command_error.txt.j2",
          "{% block subject %}[{{ ref }}] Not done: #{{ trigger or event }}: {{ subject }}"
          "{% endblock %}",
          "[{{ ref }}] Not done")
    text = "\n".join(str(p) for p in problems(tree))
    assert "reminder.html.j2:" in text and "template syntax error" in text
    assert "command_error.txt.j2:1: template has no {% block subject %}" in text


def test_jinja_globals_work_and_no_render_leaks_into_the_next(tmp_path: Path) -> None:
    (tmp_path / "t.txt.j2").write_text(
        "{% block subject %}S{% endblock %}{% block body %}"
        "{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}"
        "{% endfor %}{{ ns.n }} {{ who }}{% endblock %}")
    (tmp_path / "t.html.j2").write_text("{% block body %}{{ who }}{% endblock %}")
    renderer = Renderer(tmp_path)
    context = {"who": "ann"}
    assert renderer.render("t", context).text == "3 ann\n"
    assert context == {"who": "ann"}  # the caller's dict is not the template's scope
    with pytest.raises(RenderError, match="who"):  # the last render's names are gone
        renderer.render("t", {})


NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("value, zone, shown", [
    ("2026-11-30T13:10:00+00:00", "Europe/Berlin", "Mon 30 Nov 14:10 CET"),
    (datetime(2026, 7, 1, 7, 5, tzinfo=UTC), "Europe/Berlin", "Wed 1 Jul 09:05 CEST"),
    (datetime(2026, 11, 30, 14, 10, tzinfo=timezone(timedelta(hours=1))), "America/New_York",
     "Mon 30 Nov 08:10 EST"),
    ("2027-01-04T08:00:00+00:00", "Europe/Berlin", "Mon 4 Jan 2027 09:00 CET"),  # next year
    ("2026-11-30T13:10:00", "Europe/Berlin", "Mon 30 Nov 14:10 CET"),  # naive: UTC, as stored
    ("2026-11-30T13:10:00+00:00", None, "Mon 30 Nov 13:10 UTC"),
    ("2026-11-30T13:10:00+00:00", "Mars/Olympus", "Mon 30 Nov 13:10 UTC"),  # unknown zone
    ("2026-11-30T13:10:00+00:00", "America/Sao_Paulo", "Mon 30 Nov 10:10 UTC-03"),
    (None, "Europe/Berlin", ""), ("", None, ""), (42, None, "42"), ("soon", None, "soon"),
])
def test_when_shows_the_zones_local_time_and_abbreviation(value: object, zone: str | None,
                                                         shown: str) -> None:
    assert when(value, zone, NOW) == shown
    assert when(value, zone, NOW) == shown  # memoised answers are the same answers


def test_when_without_a_now_shows_the_year() -> None:
    assert when("2026-03-02T09:00:00+00:00", "Europe/Berlin") == "Mon 2 Mar 2026 10:00 CET"


def test_the_when_filter_formats_in_the_mails_zone_or_the_one_it_names(tmp_path: Path) -> None:
    (tmp_path / "t.txt.j2").write_text(
        "{% block subject %}s{% endblock %}{% block body %}"
        "{{ at | when }} / {{ at | when('America/New_York') }}{% endblock %}")
    (tmp_path / "t.html.j2").write_text("{% block body %}{{ at | when }}{% endblock %}")
    out = Renderer(tmp_path).render("t", {"at": "2026-11-30T13:10:00+00:00",
                                          "zone": "Europe/Berlin", "now": NOW})
    assert out.text == "Mon 30 Nov 14:10 CET / Mon 30 Nov 08:10 EST\n"
    assert "Mon 30 Nov 14:10 CET" in out.html


def test_no_shipped_template_writes_times_in_utc() -> None:
    for path in TEMPLATES.glob("*.j2"):
        assert "UTC" not in path.read_text(), path.name
    for name in NAMES:
        out = Renderer(TEMPLATES).render(name, sample_contexts()[0])
        assert "UTC" not in out.text and "2026-03-02" not in out.text, name


def test_tidy_text_follows_its_rules_on_any_text() -> None:
    rng = random.Random(7)
    pieces = ["a", "b c", " ", "\t", "\n", "\r\n", "\n\n\n", "  \n", "\t\n"]
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        expected = re.sub(r"[ \t]+\n", "\n", text.replace("\r\n", "\n")).strip("\n")
        expected = re.sub(r"\n{3,}", "\n\n", expected) + "\n"
        assert tidy_text(text) == expected, repr(text)


@pytest.mark.parametrize("name", ["reminder", "sla_warning"])
@pytest.mark.parametrize("waiting_on, says", [
    ("vendor", "Tier 2 Systems is waiting on VPNCo Support since Mon 2 Mar 10:00 CET; "
               "they have not answered."),
    ("requester", "Tier 2 Systems is waiting on the requester (ann@example.org) since "
                  "Mon 2 Mar 10:00 CET; they have not answered."),
])
def test_a_paused_ticket_says_who_waits_on_whom_in_both_parts(name: str, waiting_on: str,
                                                               says: str) -> None:
    out = Renderer(TEMPLATES).render(name, context(waiting_on=waiting_on))
    for part in (out.text, re.sub(r"<[^>]+>", "", out.html)):
        flat = " ".join(part.split())
        assert says in flat, part
        assert "nobody has taken it" not in flat and "escalates automatically" not in flat


@pytest.mark.parametrize("name", ["reminder", "sla_warning"])
def test_a_running_ticket_keeps_the_tier_wording(name: str) -> None:
    out = Renderer(TEMPLATES).render(name, context(waiting_on=None, assignee=None))
    assert "waiting on" not in out.text and "waiting on" not in out.html
    assert ("nobody has taken it" in out.text) == (name == "reminder")
