"""config/settings.yaml: the typed model, TIERDESK_* overrides, and file:line errors."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from daemon.config.calendars import Span, parse_hours
from daemon.config.problems import ConfigError, Problem
from daemon.config.settings import DEFAULT_DATABASE_URL, Settings, env_variables, load_settings

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "settings.yaml").write_text(text)
    return tmp_path


def problems(config_dir: Path, environ: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_dir, environ or {})
    return caught.value.problems


def h(hours: int, minutes: int = 0) -> timedelta:
    return timedelta(hours=hours, minutes=minutes)


# ------------------------------------------------------------------ the shipped file

def test_shipped_settings_load_with_parsed_calendars() -> None:
    settings = load_settings(ROOT / "config", {})
    assert settings.mail.address == "support@example.com"
    assert settings.imap.poll_interval == timedelta(seconds=60)
    office = settings.calendars["office-hours"]
    assert str(office.timezone) == "Europe/Berlin"
    assert office.spans(0) == (Span(start=h(9), end=h(12, 30)), Span(start=h(13, 30), end=h(17)))
    assert office.spans(5) == ()  # Saturday: closed
    assert settings.calendars["24x7"].spans(6) == (Span(start=h(0), end=h(24)),)
    assert date(2026, 12, 24) in settings.calendars["default"].holidays


def test_settings_are_frozen() -> None:
    settings = load_settings(ROOT / "config", {})
    with pytest.raises(ValidationError, match="frozen"):
        settings.imap.host = "elsewhere"  # type: ignore[misc]
    assert settings.imap.host == "localhost"


def test_settings_validated_directly_raise_validation_error() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({"imap": {"port": "imap", "colour": "red"}})
    assert [(e["type"], e["loc"]) for e in caught.value.errors()] == [
        ("int_parsing", ("imap", "port")), ("extra_forbidden", ("imap", "colour"))]


def test_missing_file_means_all_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, {})
    assert settings.database.url == DEFAULT_DATABASE_URL
    assert settings.imap.security == "tls" and settings.imap.port == 993
    assert settings.calendars["default"].spans(0) == (Span(start=h(9), end=h(17)),)


def test_empty_section_means_its_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "smtp:\nimap:\n  host: mail.example.com\n"), {})
    assert settings.smtp.port == 465
    assert settings.imap.host == "mail.example.com"


@pytest.mark.parametrize(("section", "security", "port"), [
    ("imap", "tls", 993), ("imap", "starttls", 143), ("imap", "none", 143),
    ("smtp", "tls", 465), ("smtp", "starttls", 587), ("smtp", "none", 25),
])
def test_port_follows_security_when_not_given(
    tmp_path: Path, section: str, security: str, port: int
) -> None:
    settings = load_settings(write(tmp_path, f"{section}:\n  security: {security}\n"), {})
    assert getattr(settings, section).port == port


def test_database_url_password_is_hidden() -> None:
    settings = Settings.model_validate(
        {"database": {"url": "postgresql+psycopg://td:s3cret@db:5432/tierdesk"}})
    assert settings.database.display_url == "postgresql+psycopg://td:***@db:5432/tierdesk"
    assert "s3cret" not in repr(settings)


# ------------------------------------------------------------------ environment overrides

def test_environment_overrides_file_values() -> None:
    settings = load_settings(ROOT / "config", {
        "TIERDESK_IMAP_HOST": "imap.corp.example", "TIERDESK_IMAP_PORT": "1993",
        "TIERDESK_IMAP_PASSWORD": "pw", "TIERDESK_SMTP_SECURITY": "starttls",
        "TIERDESK_DATABASE_URL": "postgresql+psycopg://td@db/tierdesk",
        "TIERDESK_MAIL_ADDRESS": "helpdesk@corp.example", "TIERDESK_IMAP_TIMEOUT": "2m",
        "TIERDESK_SITE_DOMAIN": "corp.example",
    })
    assert settings.imap.host == "imap.corp.example" and settings.imap.port == 1993
    assert settings.imap.password.get_secret_value() == "pw"
    assert settings.smtp.security == "starttls"
    assert settings.smtp.port == 465  # the file names a port; the override changes security only
    assert settings.database.url == "postgresql+psycopg://td@db/tierdesk"
    assert settings.mail.address == "helpdesk@corp.example"
    assert settings.imap.timeout == timedelta(minutes=2)
    assert settings.site.domain == "corp.example"


def test_documented_variables_exist() -> None:
    names = env_variables()
    for name in ("TIERDESK_IMAP_HOST", "TIERDESK_IMAP_PORT", "TIERDESK_IMAP_USERNAME",
                 "TIERDESK_IMAP_PASSWORD", "TIERDESK_IMAP_SECURITY", "TIERDESK_SMTP_HOST",
                 "TIERDESK_SMTP_PASSWORD", "TIERDESK_DATABASE_URL", "TIERDESK_MAIL_ADDRESS",
                 "TIERDESK_SITE_DOMAIN"):
        assert name in names


def test_readme_lists_every_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in env_variables() if f"`{name}`" not in readme]
    assert not missing, f"README.md does not document {missing}"


def test_invalid_override_names_the_variable() -> None:
    found = problems(ROOT / "config", {"TIERDESK_IMAP_PORT": "imap", "TIERDESK_SMTP_SECURITY":
                                       "ssl", "TIERDESK_IMAP_POLL_INTERVAL": "soon"})
    text = [str(p) for p in found]
    assert any(t.startswith("TIERDESK_IMAP_PORT: ") and "'imap'" in t for t in text), text
    assert any(t.startswith("TIERDESK_SMTP_SECURITY: ") and "starttls" in t for t in text), text
    assert any(t.startswith("TIERDESK_IMAP_POLL_INTERVAL: ") for t in text), text


def test_unknown_variable_is_reported_with_a_suggestion() -> None:
    [problem] = problems(ROOT / "config", {"TIERDESK_IMAP_HOTS": "x", "TIERDESK_TEST_PG_URL": "x",
                                           "OTHER": "x"})
    assert str(problem).startswith("TIERDESK_IMAP_HOTS: ")
    assert "TIERDESK_IMAP_HOST" in problem.fix


# ------------------------------------------------------------------ file errors with lines

BAD_VALUES = [
    # (yaml, line, words in the problem)
    ("imap:\n  port: high\n", 2, ("imap.port", "'high'")),
    ("imap:\n  port: 70000\n", 2, ("imap.port", "65535")),
    # YAML true is no port (a bool is an int to Python, not to us).
    ("imap:\n  port: true\n", 2, ("imap.port", "valid integer", "True")),
    ("smtp:\n  security: ssl\n", 2, ("smtp.security", "starttls")),
    ("imap:\n  poll_interval: 5\n", 2, ("poll_interval", "no unit")),
    ("mail:\n  address: IT Support <support@example.com>\n", 2, ("not a valid e-mail",)),
    ("site:\n  domain: exa mple.com\n", 2, ("not a valid host name",)),
    ("database:\n  url: tierdesk.db\n", 2, ("not a database URL", "sqlite:///")),
    ("mail:\n  adress: a@example.com\n", 2, ("unknown key 'adress'", "address, name")),
    ("imapp:\n  host: x\n", 1, ("unknown key 'imapp'", "imap")),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD_VALUES)
def test_bad_values_are_reported_at_their_line(
    tmp_path: Path, text: str, line: int, words: tuple[str, ...]
) -> None:
    found = problems(write(tmp_path, text))
    assert any(p.line == line and all(w in str(p) for w in words) for p in found), found
    assert all(p.file.endswith("settings.yaml") for p in found)


CALENDAR = """\
calendars:
  default:
    timezone: {tz}
    hours:
      {day}: "{hours}"
    holidays: [{holiday}]
"""


@pytest.mark.parametrize(("field", "value", "line", "words"), [
    ("tz", "Europe/Berln", 3, ("unknown time zone", "IANA")),
    ("tz", "5", 3, ("unknown time zone 5", "IANA")),
    ("day", "monday", 5, ("monday",)),
    ("hours", "9-17", 5, ("not a time of day",)),
    ("hours", "09:00-09:00", 5, ("is empty", "00:00-24:00")),
    ("hours", "09:00-13:00, 12:00-17:00", 5, ("overlaps",)),
    ("hours", "00:00-24:30", 5, ("24:00",)),
    ("holiday", "xmas", 6, ("holidays.0",)),
])
def test_calendar_errors(
    tmp_path: Path, field: str, value: str, line: int, words: tuple[str, ...]
) -> None:
    values = {"tz": "UTC", "day": "mon", "hours": "09:00-17:00", "holiday": "2026-12-25"}
    values[field] = value
    found = problems(write(tmp_path, CALENDAR.format(**values)))
    assert any(p.line == line and all(w in str(p) for w in words) for p in found), found


def test_a_bad_password_is_not_echoed(tmp_path: Path) -> None:
    [problem] = problems(write(tmp_path, "imap:\n  password: 12345678\n"))
    assert problem.line == 2 and "imap.password: Input should be a valid string, not a number" \
        in str(problem) and "12345678" not in str(problem)


def test_calendars_need_a_default(tmp_path: Path) -> None:
    text = "calendars:\n  office:\n    timezone: UTC\n    hours: {mon: '09:00-17:00'}\n"
    [problem] = problems(write(tmp_path, text))
    assert problem.line == 1 and "default" in str(problem)


def test_a_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    [problem] = problems(write(tmp_path, "- imap\n"))
    assert "mapping" in problem.message


@pytest.mark.parametrize(("text", "spans"), [
    ("08:00-18:00", [(h(8), h(18))]),
    ("09:00-12:30, 13:30-17:00", [(h(9), h(12, 30)), (h(13, 30), h(17))]),
    ("0:00-24:00", [(h(0), h(24))]),
    (" 07:15 - 07:45 ", [(h(7, 15), h(7, 45))]),
    # An end before the start is on the next day: an overnight shift.
    ("22:00-06:00", [(h(22), h(30))]),
    ("22:00-00:00", [(h(22), h(24))]),
    ("10:00-09:00", [(h(10), h(33))]),
    ("06:00-09:00, 22:00-02:00", [(h(6), h(9)), (h(22), h(26))]),
])
def test_parse_hours(text: str, spans: list[tuple[timedelta, timedelta]]) -> None:
    assert parse_hours(text) == tuple(Span(start=a, end=b) for a, b in spans)


def test_overnight_span_prints_as_written() -> None:
    spans = parse_hours("22:00-06:00")
    assert isinstance(spans, tuple) and str(spans[0]) == "22:00-06:00" and spans[0].overnight


@pytest.mark.parametrize("text", ["", "08:00", "24:00-24:00", "08:60-09:00", "8h-9h",
                                  "09:00-09:00", "00:00-00:00", "09:00-10:00,09:30-11:00",
                                  "22:00-06:00, 23:00-23:30", "22:00-02:00, 08:00-12:00"])
def test_parse_hours_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hours(text)


WEEK = """\
calendars:
  default:
    timezone: Europe/Berlin
    hours:
{days}
"""


@pytest.mark.parametrize(("days", "words"), [
    ({"mon": "22:00-06:00", "tue": "05:00-13:00"},
     "mon 22:00-06:00 runs into tue 05:00-13:00; end the mon shift by 05:00 or start tue at "
     "06:00 or later"),
    ({"sun": "20:00-02:00", "mon": "01:00-09:00"}, "sun 20:00-02:00 runs into mon 01:00-09:00"),
])
def test_overnight_shift_overlapping_the_next_day(
    tmp_path: Path, days: dict[str, str], words: str
) -> None:
    lines = "\n".join(f'      {day}: "{hours}"' for day, hours in days.items())
    [problem] = problems(write(tmp_path, WEEK.format(days=lines)))
    assert problem.line == 4 and words in str(problem), problem


def test_overnight_shift_may_end_as_the_next_day_opens(tmp_path: Path) -> None:
    lines = '      mon: "22:00-06:00"\n      tue: "06:00-14:00"'
    settings = load_settings(write(tmp_path, WEEK.format(days=lines)), {})
    assert settings.calendars["default"].spans(0) == (Span(start=h(22), end=h(30)),)


# ------------------------------------------------------------------ holidays_file

ICS = ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\nRRULE:FREQ=YEARLY\n"
       "END:VEVENT\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260406\nEND:VEVENT\nEND:VCALENDAR\n")
WITH_FILE = """\
calendars:
  default:
    timezone: Europe/Berlin
    hours: {{mon: "09:00-17:00"}}
    holidays: [2026-05-01]
    holidays_file: {path}
"""


def test_holidays_file_is_relative_to_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "holidays.ics").write_text(ICS)
    settings = load_settings(write(tmp_path, WITH_FILE.format(path="cal/holidays.ics")), {})
    calendar = settings.calendars["default"]
    closed = [d for d in (date(2026, 5, 1), date(2026, 4, 6), date(2030, 12, 25),
                          date(2026, 4, 7)) if calendar.is_holiday(d)]
    assert closed == [date(2026, 5, 1), date(2026, 4, 6), date(2030, 12, 25)]


@pytest.mark.parametrize(("ics", "words"), [
    (None, ("holidays_file", "holidays.ics: cannot read the holidays file")),
    (ICS.replace("20260406", "2026-04-06"), ("holidays.ics:7: DTSTART '2026-04-06' is not a date",
                                             "YYYYMMDD")),
])
def test_holidays_file_problems_name_the_file(
    tmp_path: Path, ics: str | None, words: tuple[str, ...]
) -> None:
    if ics is not None:
        (tmp_path / "holidays.ics").write_text(ics)
    [problem] = problems(write(tmp_path, WITH_FILE.format(path="holidays.ics")))
    assert problem.line == 6 and problem.file.endswith("settings.yaml")
    assert all(w in str(problem) for w in words), problem


def test_holidays_file_must_be_a_path(tmp_path: Path) -> None:
    [problem] = problems(write(tmp_path, WITH_FILE.format(path="[a.ics]")))
    assert problem.line == 6 and "not a file path" in str(problem)
