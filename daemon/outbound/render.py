"""Mail templates: sandboxed Jinja2, strict about undefined names, HTML autoescaped.

Each mail NAME has two files in mail_templates/: NAME.txt.j2, whose `{% block subject %}` is the
subject and whose `{% block body %}` is the plain-text part, and NAME.html.j2, whose
`{% block body %}` is the HTML part (autoescaped). User text (subjects, replies, notes) only
ever arrives as context values: it is data, never template source, so `{{ 7*7 }}` written by
a requester is sent as written.

The context a template may use is the engine's (daemon/workflow/mails.py `context`) plus the
keys in ENRICHED_SAMPLE, which the outbox adds when a template reads them. `template_problems`
checks every template against that contract for `run.py check`.
"""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    meta,
    nodes,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context, new_context
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

from daemon.config.problems import Problem
from daemon.workflow.facts import TicketFacts
from daemon.workflow.mails import context as engine_context

TEXT = ".txt.j2"
HTML = ".html.j2"
_NEWLINES = re.compile(r"[\r\n\u2028\u2029]+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")
_HTML_PAGE = ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
              "</head>\n<body>\n{body}\n</body></html>\n")


class RenderError(Exception):
    """A template failed for this context; the message names file and line."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


# ------------------------------------------------------------------ filters

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def zone_of(name: object) -> tzinfo:
    """The zone a context names ("Europe/Berlin"); UTC for none or one we do not know."""
    if isinstance(name, tzinfo):
        return name
    return _zone(str(name)) if name else UTC


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC  # a time in UTC, said so, beats a mail that cannot be rendered


def moment(value: object, zone: object = None) -> datetime | None:
    """An ISO 8601 text or a datetime as an aware datetime in `zone` (naive means UTC, as
    stored); None for anything else."""
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(zone_of(zone))


def when(value: object, zone: object = None, now: object = None) -> str:
    """A time as people read it, in `zone` (UTC if none) with its abbreviation:
    `Mon 30 Nov 14:10 CET`, with the year when it is not the year of `now`, or when there is
    no `now` to compare with (`Fri 1 Jan 2027 09:00 CET`)."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str | datetime):
        return str(value)
    year = now.year if isinstance(now, datetime) else None
    return _when(value, zone_of(zone), year)


@functools.lru_cache(maxsize=256)
def _when(value: str | datetime, zone: tzinfo, year: int | None) -> str:
    # Memoised: a batch's mails share a few deadlines and times (they all start at its now).
    local = moment(value, zone)
    if local is None:
        return str(value)
    shown_year = f" {local.year}" if local.year != year else ""
    return (f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]}{shown_year} "
            f"{local:%H:%M} {_abbreviation(local)}")


def _abbreviation(local: datetime) -> str:
    # Zones without a letter abbreviation name their offset ("-03"): say "UTC-03".
    name = local.tzname() or "UTC"
    return f"UTC{name}" if name[:1] in "+-" else name


@pass_context
def when_filter(ctx: Context, value: object, zone: object = None) -> str:
    """`{{ t | when }}`: in the mail's governing zone (the context's `zone`), the year shown
    against the mail's `now`; `{{ t | when("America/New_York") }}` names another zone."""
    return when(value, zone or ctx.get("zone"), ctx.get("now"))


def size(value: object) -> str:
    """A byte count for people: 512 B, 14 KB, 3.2 MB."""
    count = int(value) if isinstance(value, int | float | str) else 0
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count // 1024} KB"
    return f"{count / (1024 * 1024):.1f} MB"


def environment(folder: Path) -> SandboxedEnvironment:
    """The one way templates are loaded: sandboxed, strict, HTML escaped by file name."""
    env = SandboxedEnvironment(
        loader=FileSystemLoader(folder),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",),
                                     default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["when"] = when_filter
    env.filters["size"] = size
    return env


# ------------------------------------------------------------------ rendering

class Renderer:
    """Renders NAME.txt.j2 and NAME.html.j2 of one folder; compiled templates are cached."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._env = environment(folder)
        self._variables: dict[str, frozenset[str]] = {}
        self._templates: dict[str, _Loaded] = {}  # skips Jinja's loader cache on each mail

    def render(self, name: str, context: Mapping[str, Any]) -> Rendered:
        text = self._template(name + TEXT)
        html = self._template(name + HTML)
        # One Jinja context per template: its two blocks read the same names.
        text_ctx = _context(text, context)
        subject = one_line(_block(text[0], "subject", text_ctx))
        body = tidy_text(_block(text[0], "body", text_ctx))
        html_body = _block(html[0], "body", _context(html, context)).strip()
        page = _HTML_PAGE.format(title=escape(subject), body=html_body)
        return Rendered(subject, body, page)

    def variables(self, name: str) -> frozenset[str]:
        """Every top-level name the two parts of NAME read (so callers compute only those)."""
        if name not in self._variables:
            found: set[str] = set()
            for suffix in (TEXT, HTML):
                found |= meta.find_undeclared_variables(self._parse(name + suffix))
            self._variables[name] = frozenset(found)
        return self._variables[name]

    def _parse(self, filename: str) -> nodes.Template:
        try:
            source = self._env.loader.get_source(self._env, filename)[0]  # type: ignore[union-attr]
            return self._env.parse(source)
        except TemplateError as exc:
            raise RenderError(f"{filename}: {type(exc).__name__}: {exc}") from None

    def _template(self, filename: str) -> _Loaded:
        found = self._templates.get(filename)
        if found is not None:
            return found
        try:
            template = self._env.get_template(filename)
        except TemplateError as exc:
            raise RenderError(f"{filename}: {exc}") from None
        found = self._templates[filename] = (template, dict(template.globals))
        return found


_Loaded = tuple[Template, dict[str, Any]]  # a compiled template and a copy of its globals


def _context(loaded: _Loaded, context: Mapping[str, Any]) -> Context:
    template, scope = loaded
    try:
        # Template.new_context walks the template's globals, a ChainMap, twice per mail (to
        # merge them under our names, then to list their keys): a plain copy made once
        # does both.
        return new_context(template.environment, template.name, template.blocks,
                           {**scope, **context}, True, scope)
    except Exception as exc:  # as in _block: one readable error
        raise RenderError(f"{where(template, exc)}: {type(exc).__name__}: {exc}") from None


def _block(template: Template, block: str, ctx: Context) -> str:
    """One block of a template, or the whole template when it has no such block."""
    try:
        if block in template.blocks:
            return "".join(template.blocks[block](ctx))
        return "".join(template.root_render_func(ctx))
    except Exception as exc:  # any failure of a template is one readable error, not a crash
        raise RenderError(f"{where(template, exc)}: {type(exc).__name__}: {exc}") from None


def where(template: Template, exc: BaseException) -> str:
    """`file:line` of the template line that raised `exc`."""
    line = error_line(template, exc)
    return f"{Path(template.filename or template.name or '?').name}:{line}"


def error_line(template: Template, exc: BaseException) -> int:
    lines = [template.get_corresponding_lineno(frame.lineno or 0)
             for frame in traceback.extract_tb(exc.__traceback__)
             if frame.filename == template.filename]
    return lines[-1] if lines else 0


def one_line(text: str) -> str:
    """A subject: no CR, LF or line separators (they would end the header), spaces collapsed."""
    return " ".join(_NEWLINES.sub(" ", text).split())


def tidy_text(text: str) -> str:
    """Plain text without trailing spaces, leading blank lines or runs of blank lines."""
    # The substring tests are far cheaper than a regex scan, and most mail needs neither.
    text = text.replace("\r\n", "\n")
    if " \n" in text or "\t\n" in text:
        text = _TRAILING_SPACE.sub("\n", text)
    text = text.strip("\n")
    return (_BLANK_RUNS.sub("\n\n", text) if "\n\n\n" in text else text) + "\n"


# ------------------------------------------------------------------ the template contract

SAMPLE_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SAMPLE_ZONE = ZoneInfo("Europe/Berlin")
_SAMPLE_LOCAL_NOW = SAMPLE_NOW.astimezone(SAMPLE_ZONE)

# Keys the outbox adds on top of the engine's context (daemon/outbound/writer.py fills each one only
# when a template reads it). External recipients (requester, vendor) never see internal notes.
ENRICHED_SAMPLE: dict[str, Any] = {
    "team_name": "Tier 2 Systems",
    "previous_team_name": "Tier 1 Support",
    "vendor_name": "VPNCo Support",
    "assignee_name": "Morgan Lee",
    "requester_name": "Ann Example",
    "support_address": "support@example.com",
    "reply_address": "support+TD-42@example.com",
    # Times in the zone of the calendar that governs the ticket's state: the zone's name (the
    # `when` filter formats in it), the mail's now, and each time as an aware datetime in that
    # zone plus its text (Mon 2 Mar 13:00 CET). The store keeps UTC.
    "zone": "Europe/Berlin",
    "now": _SAMPLE_LOCAL_NOW,
    "deadline": _SAMPLE_LOCAL_NOW + timedelta(hours=3),
    "deadline_text": "Mon 2 Mar 13:00 CET",
    "time_left": "3h 0m",
    # Since when the ticket is in its state, and whom a paused clock waits on: "vendor",
    # "requester" or None (daemon/workflow/engine.py mail_facts).
    "since": _SAMPLE_LOCAL_NOW,
    "since_text": "Mon 2 Mar 10:00 CET",
    "waiting_on": "vendor",
    "original": {
        "sender": "Ann Example <ann@example.org>", "subject": "VPN drops every 5 minutes",
        "at": "2026-03-02T08:40:00+00:00", "text": "Since this morning the VPN drops.\n",
    },
    "timeline": [
        {"at": "2026-03-02T08:40:00+00:00", "actor": "requester", "kind": "created",
         "from_state": None, "to_state": "triage", "reason": "new ticket", "text": "",
         "internal": False},
        {"at": "2026-03-02T08:50:00+00:00", "actor": "alex.chen@example.com", "kind": "note",
         "from_state": "tier1", "to_state": "tier1", "reason": "reinstalled the client",
         "text": "", "internal": True},
    ],
    "attachments": [
        {"filename": "screenshot.png", "content_type": "image/png", "size": 48213,
         "sender": "ann@example.org", "at": "2026-03-02T08:40:00+00:00", "attached": True},
    ],
    # The subject of the incident (`incident`) on its mails to a linked requester and on the
    # link notice (daemon/tickets/runtime.py, workflow/engine.py); None elsewhere.
    "incident_subject": "VPN down",
    # On the front line's notice of a new ticket a triage rule linked (`link: true`).
    "auto_link": {"incident": "TD-39", "lookalike": "TD-41", "rule": "same-outage",
                  "score": "87%"},
    # The reports linked to this ticket's incident (#link), from the history (history.py).
    "linked": [
        {"ref": "TD-43", "requester": "bo@example.org", "subject": "VPN gone",
         "state": "triage"},
    ],
    # A technician mail's commands and their results (daemon/inbound/technician.py puts them in the
    # row's context; receipts read them with `results is defined`).
    "results": [
        {"tag": "#take", "command": "#take", "done": True, "detail": "taken by you",
         "syntax": "#take"},
        {"tag": "#esclate", "command": "#esclate to tier3", "done": False,
         "detail": "#esclate is not a command; did you mean #escalate?",
         "syntax": "#escalate [to <tier>] [reason]"},
    ],
    # Tickets like this one (daemon/outbound/lookalikes.py), internal mails only: look-alikes
    # opened shortly before it (None when there are none), and resolved ones with their fix.
    "lookalikes": {
        "count": 3, "refs": ["TD-39", "TD-40", "TD-41"], "link": "TD-39", "span": "20 min",
        "tickets": [
            {"ref": "TD-39", "subject": "VPN down", "state": "triage", "at": _SAMPLE_LOCAL_NOW},
            {"ref": "TD-40", "subject": "no VPN", "state": "tier1", "at": _SAMPLE_LOCAL_NOW},
            {"ref": "TD-41", "subject": "VPN drops", "state": "triage",
             "at": _SAMPLE_LOCAL_NOW},
        ],
    },
    "past_fixes": [
        {"ref": "TD-12", "subject": "VPN certificate error", "date": "12 Oct",
         "fixed_by": "Rosa Okafor", "fixed_by_address": "rosa.okafor@example.com",
         "summary": "imported the intermediate certificate again",
         "line": "TD-12, 12 Oct, fixed by Rosa Okafor: imported the intermediate certificate "
                 "again"},
    ],
    # A refusal notice: how many refused mails it stands for (daemon/outbound/notice_gate.py).
    "refused_count": 3,
    "refused_refs": ["TD-42", "TD-40"],
    "refused_since": "2026-03-02T08:50:00+00:00",
}

# The same keys when there is nothing to tell: templates must cope with both.
ENRICHED_SPARSE: dict[str, Any] = {
    **{key: None for key in ENRICHED_SAMPLE},
    "zone": "UTC",
    "now": SAMPLE_NOW,
    "support_address": "support@example.com",
    "reply_address": "support+TD-42@example.com",
    "timeline": [],
    "attachments": [],
    "linked": [],
    "results": [],
    "past_fixes": [],
    "refused_count": 1,
    "refused_refs": [],
}


def sample_contexts() -> list[dict[str, Any]]:
    """A rich and a sparse context with every key a template may use."""
    before = TicketFacts(ref="TD-42", state="tier1", priority="P2", team="tier1",
                         requester="ann@example.org", subject="VPN drops every 5 minutes",
                         created_at=SAMPLE_NOW, state_entered_at=SAMPLE_NOW,
                         assignee="alex.chen@example.com")
    after = TicketFacts(ref="TD-42", state="tier2", priority="P2", team="tier2",
                        requester="ann@example.org", subject="VPN drops every 5 minutes",
                        created_at=SAMPLE_NOW, state_entered_at=SAMPLE_NOW,
                        assignee="morgan.lee@example.com", vendor="vpnco", bounces=1,
                        parent="TD-39")
    rich = engine_context(before, after, event="transition", actor="alex.chen@example.com",
                          reason="needs a network engineer", argument="see the logs",
                          trigger="escalate", deadline=None,
                          excerpt="Since this morning the VPN drops\nevery 5 minutes.")
    sparse = engine_context(after, after, event="created", actor="requester")
    sparse.update(team=None, previous_team=None, assignee=None, vendor=None, incident=None)
    return [{**rich, **ENRICHED_SAMPLE}, {**sparse, **ENRICHED_SPARSE}]


def known_variables() -> frozenset[str]:
    return frozenset(sample_contexts()[0])


# ------------------------------------------------------------------ checks for `run.py check`

def template_problems(folder: Path) -> list[Problem]:
    """Syntax errors, missing blocks, unknown variables and failures against the sample
    contexts, each with its file and line."""
    env = environment(folder)
    known = known_variables()
    problems: list[Problem] = []
    for path in sorted(folder.glob("*.j2")):
        problems.extend(_file_problems(env, path, known))
    return problems


def _file_problems(env: SandboxedEnvironment, path: Path,
                   known: frozenset[str]) -> Iterator[Problem]:
    try:
        source = path.read_text(encoding="utf-8")
        tree = env.parse(source, path.name, str(path))
    except TemplateSyntaxError as exc:
        yield Problem(str(path), exc.lineno or 0, f"template syntax error: {exc.message}",
                      "check the {{ }}, {% %} and {# #} pairs")
        return
    except (OSError, UnicodeDecodeError) as exc:
        yield Problem(str(path), 0, f"cannot read template: {exc}")
        return
    unknown = sorted(meta.find_undeclared_variables(tree) - known)
    for name in unknown:
        yield Problem(str(path), _first_use(tree, name), f"undefined template variable {name!r}",
                      f"use one of: {', '.join(sorted(known))}")
    yield from _block_problems(path, tree)
    if not unknown:
        yield from _render_problems(env, path)


def _first_use(tree: nodes.Template, name: str) -> int:
    lines = [node.lineno for node in tree.find_all(nodes.Name)
             if node.name == name and node.ctx == "load"]
    return min(lines) if lines else 0


def _block_problems(path: Path, tree: nodes.Template) -> Iterator[Problem]:
    blocks = {block.name for block in tree.find_all(nodes.Block)}
    wanted = ("subject", "body") if path.name.endswith(TEXT) else ("body",)
    for block in wanted:
        if block not in blocks:
            yield Problem(str(path), 1, f"template has no {{% block {block} %}}",
                          f"wrap the {block} in {{% block {block} %}}...{{% endblock %}}")


def _render_problems(env: SandboxedEnvironment, path: Path) -> Iterator[Problem]:
    template = env.get_template(path.name)
    for context in sample_contexts():
        try:
            "".join(template.root_render_func(template.new_context(context)))
        except Exception as exc:  # a template that fails here would fail on a real mail
            yield Problem(str(path), error_line(template, exc),
                          f"template fails on a sample ticket: {type(exc).__name__}: {exc}",
                          "guard optional values with {% if ... %}")
            return
