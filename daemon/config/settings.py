"""Site settings (config/settings.yaml) as typed, frozen objects, with TIERDESK_* overrides.

Every key of the sections site, mail, imap, smtp, database, auth and daemon can be overridden by an
environment variable TIERDESK_<SECTION>_<KEY> (TIERDESK_IMAP_PASSWORD, TIERDESK_DATABASE_URL),
so secrets need not sit in files. Overrides are applied before validation, so a bad value is
reported naming the variable. Calendars (daemon/config/calendars.py) are nested and can only
be set in the file.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from daemon.config.calendars import Calendar, default_calendars
from daemon.config.database_url import database_url_problem, hide_password
from daemon.config.duplicates import DuplicatesSettings
from daemon.config.durations import parse_duration
from daemon.config.frozen import Frozen, Int, Secret
from daemon.config.problems import ConfigError, Problem
from daemon.config.validation import describe, model_errors, validation_problems
from daemon.config.yamlsource import Source, load_yaml

ENV_PREFIX = "TIERDESK_"
# Variables under these prefixes are not settings (test fixtures use them); never reported.
NON_SETTING_PREFIXES = ("TIERDESK_TEST_",)
DEFAULT_DATABASE_URL = "sqlite:///tierdesk.db"

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_ADDRESS_RE = re.compile(rf"^{_LOCAL}@{_DOMAIN}$")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")


def check_address(value: str) -> str:
    """A bare address (no display name, no spaces, one @, valid domain labels), kept as written."""
    if not _ADDRESS_RE.match(value) or len(value) > 254 or len(value.split("@")[0]) > 64:
        raise ValueError(
            f"{value!r} is not a valid e-mail address; write a bare address such as "
            "alex.chen@example.com, without a name, <> or spaces"
        )
    return value


def _check_host(value: str) -> str:
    if not _DOMAIN_RE.match(value):
        raise ValueError(f"{value!r} is not a valid host name; write e.g. mail.example.com")
    return value


def _duration(value: object) -> timedelta:
    return value if isinstance(value, timedelta) else parse_duration(value)  # type: ignore[arg-type]


EmailAddress = Annotated[str, AfterValidator(check_address)]
HostName = Annotated[str, AfterValidator(_check_host)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
Port = Annotated[Int, Field(ge=1, le=65535)]
Security = Literal["tls", "starttls", "none"]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]



# ------------------------------------------------------------------ sections

class SiteSettings(Frozen):
    # The domain our Message-IDs and plus-addresses use.
    domain: HostName = "localhost"


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(kb|mb|gb|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3}


def parse_size(value: object) -> object:
    """"30MB", "500 kB" or a plain number of bytes (decimal units, as mail clients show)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size; write e.g. 30MB, 500kB or 1GB")
    return int(float(match[1]) * _SIZE_UNITS[(match[2] or "b").lower()])


Size = Annotated[Int, BeforeValidator(parse_size), Field(ge=1)]
Budget = Annotated[Int, BeforeValidator(parse_size), Field(ge=0)]  # 0: list files, attach none


class MailSettings(Frozen):
    address: EmailAddress = "support@localhost"
    name: str = "IT Support"
    # Loop protection: an outside address gets at most this many automatic mails an hour.
    max_auto_replies_per_hour: Int = Field(default=10, ge=1)
    # Loop protection: an outside address opens at most this many tickets an hour; later
    # new conversations from it are recorded on its latest ticket (daemon/inbound/ticket_limit.py).
    max_new_tickets_per_hour: Int = Field(default=5, ge=1)
    # Larger mail is quarantined with the reason, never dropped. Base64 adds a third, so a
    # 30 MB attachment needs about 41 MB of mail.
    max_size: Size = 60_000_000
    max_attachments: Int = Field(default=100, ge=0)
    max_attachment_size: Size = 40_000_000
    # Files passed on, in total per mail (outbound/attachments.py): by handoffs, and by a
    # technician's reply to the requester. The rest are listed, kept on the ticket.
    handoff_attachments_max: Budget = 10_000_000
    reply_attachments_max: Budget = 25_000_000


def _fill_port(data: object, ports: Mapping[str, int]) -> object:
    """No port given: take the usual one for the security mode."""
    if isinstance(data, dict) and "port" not in data and data.get("security") in ports:
        return {**data, "port": ports[data["security"]]}
    return data


class ImapSettings(Frozen):
    host: HostName = "localhost"
    port: Port = 993
    security: Security = "tls"
    username: str = ""
    password: Secret = SecretStr("")
    folder: str = "INBOX"
    processed_folder: str = ""
    poll_interval: Duration = timedelta(seconds=60)
    # IDLE is ended and re-issued this often: Dovecot holds its notices back for 0.5 s, but
    # reports new mail at once when IDLE ends, so a short renewal is a faster wake-up.
    idle_renew: Duration = timedelta(milliseconds=250)
    timeout: Duration = timedelta(seconds=30)

    @model_validator(mode="before")
    @classmethod
    def _port(cls, data: object) -> object:
        return _fill_port(data, {"tls": 993, "starttls": 143, "none": 143})


class SmtpSettings(Frozen):
    host: HostName = "localhost"
    port: Port = 465
    security: Security = "tls"
    username: str = ""
    password: Secret = SecretStr("")
    timeout: Duration = timedelta(seconds=30)

    @model_validator(mode="before")
    @classmethod
    def _port(cls, data: object) -> object:
        return _fill_port(data, {"tls": 465, "starttls": 587, "none": 25})


class DatabaseSettings(Frozen):
    # A relative SQLite path (sqlite:///tierdesk.db) is relative to the working directory.
    url: str = Field(default=DEFAULT_DATABASE_URL, repr=False)

    @field_validator("url")
    @classmethod
    def _can_be_opened(cls, url: str) -> str:
        problem = database_url_problem(url)
        if problem:
            raise ValueError(problem)
        return url

    @property
    def display_url(self) -> str:
        """The URL with its password replaced by ***, for logs and start-up lines."""
        return hide_password(self.url)


MIN_SECRET = 32
SECRET_HINT = ("set TIERDESK_AUTH_SECRET in the daemon's environment, e.g. to the output of "
               "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")


def _names(value: object) -> object:
    """A list, or one comma-separated string (the form a TIERDESK_AUTH_* variable takes)."""
    return tuple(v.strip().lower() for v in value.split(",") if v.strip()) \
        if isinstance(value, str) else value


def _check_dns_server(value: str) -> str:
    """An IP address with an optional port: 192.0.2.53, 192.0.2.53:5353, [2001:db8::1]:53."""
    try:
        dns_server_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a DNS server; write an IP address with an optional "
                         "port, e.g. 192.0.2.53, 127.0.0.1:5353 or [::1]:53") from None
    return value


def dns_server_address(value: str) -> tuple[str, int]:
    """(ip, port) of a dns_servers entry; ValueError if it is none."""
    host, port = value, "53"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":") if rest else "53"
    elif value.count(":") == 1:
        host, port = value.split(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(value)
    return str(ipaddress.ip_address(host)), int(port)


DnsServer = Annotated[str, AfterValidator(_check_dns_server)]
def _secret_list(value: object) -> object:
    """A list, or one comma-separated string (TIERDESK_AUTH_PREVIOUS_SECRETS)."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return tuple(v.strip() for v in value.split(",") if v.strip()) \
        if isinstance(value, str) else value


def _check_secret(secret: SecretStr) -> None:
    length = len(secret.get_secret_value())
    if 0 < length < MIN_SECRET:
        raise ValueError(f"the secret has {length} characters, fewer than {MIN_SECRET}; "
                         f"{SECRET_HINT}")


class AuthSettings(Frozen):
    """Who may run command tags (daemon/auth/sender_auth.py has the rules)."""

    # strict: the From address must be a directory member AND the mail authenticated by our
    # server's Authentication-Results or sent to the member's signed reply address.
    mode: Literal["strict"] = "strict"
    # authserv-ids of our own receiving servers; other servers' results never count.
    trusted_authserv_ids: Annotated[tuple[HostName, ...], BeforeValidator(_names)] = ()
    # How many Authentication-Results headers from the top may be ours (see sender_auth).
    trusted_headers: Int = Field(default=1, ge=1, le=10)
    # Signs reply addresses; from TIERDESK_AUTH_SECRET, never from this file.
    secret: Secret = Field(default=SecretStr(""), repr=False)
    # Keys that signed reply addresses before `secret` was rotated: their addresses keep
    # working until they expire. TIERDESK_AUTH_PREVIOUS_SECRETS, comma-separated.
    previous_secrets: Annotated[tuple[Secret, ...], BeforeValidator(_secret_list)] = \
        Field(default=(), repr=False)
    # A signed reply address stops working this long after the mail that carried it ...
    reply_address_lifetime: Duration = timedelta(days=90)
    # ... and this long after its ticket was resolved, whichever comes first.
    reply_address_after_resolve: Duration = timedelta(days=14)
    # At most one "a mail in your name was refused" notice per address this often; the
    # next one counts what was refused meanwhile (daemon/outbound/notice_gate.py).
    refusal_notices_every: Duration = timedelta(minutes=10)
    # Verify DKIM signatures ourselves, aligned with the From domain's DMARC (daemon/auth/).
    dkim: bool = True
    # All DNS lookups of one mail (DKIM keys, DMARC records) give up after this long.
    dns_timeout: Duration = timedelta(seconds=2)
    # Resolvers to ask ("192.0.2.53", "127.0.0.1:5353", "[::1]:53"); empty: /etc/resolv.conf.
    dns_servers: Annotated[tuple[DnsServer, ...], BeforeValidator(_names)] = ()

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr) -> SecretStr:
        _check_secret(secret)
        return secret

    @field_validator("previous_secrets")
    @classmethod
    def _all_long_enough(cls, secrets: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for secret in secrets:
            _check_secret(secret)
        return secrets

    @property
    def signing(self) -> bool:
        """Signed reply addresses are handed out and accepted."""
        return bool(self.secret.get_secret_value())


def auth_warnings(settings: Settings, config_dir: Path,
                  environ: Mapping[str, str] | None = None) -> list[Problem]:
    """What `tierdesk check` warns about but does not fail on: trusting a receiving server's
    Authentication-Results (safe only if that server deletes forged ones), and no secret
    (technicians get no signed reply addresses)."""
    path = config_dir / "settings.yaml"
    source = load_yaml(path) if path.exists() else Source(str(path), {}, {})
    warnings: list[Problem] = []
    trusted = settings.auth.trusted_authserv_ids
    if trusted:
        variable = f"{ENV_PREFIX}AUTH_TRUSTED_AUTHSERV_IDS"
        where = (f"{variable} (environment)" if variable in (environ or {})
                 else "auth.trusted_authserv_ids")
        ids = ", ".join(trusted)
        warnings.append(source.problem(
            ("auth", "trusted_authserv_ids"),
            f"{where} trusts Authentication-Results headers bearing {ids}: anyone can write "
            f"such a header into a mail, so this is safe only if the server that delivers "
            f"into the mailbox deletes incoming Authentication-Results bearing {ids} and "
            f"writes its own (RFC 8601 section 5). Dovecot LMTP, fetchmail and many relays "
            f"add none and delete none",
            f"test it: from an account outside your domain, send the support address a mail "
            f"carrying the header `Authentication-Results: {trusted[0]}; dmarc=pass "
            f"header.from={settings.site.domain}`, then look at the delivered copy (or run "
            f"`tierdesk explain` on it): that header must be gone. If it is still there, "
            f"empty auth.trusted_authserv_ids"))
    if settings.auth.mode == "strict" and not settings.auth.signing:
        warnings.append(Problem(str(path), source.line(("auth",)) if source.lines else 0,
                                "TIERDESK_AUTH_SECRET is not set: technicians get no signed "
                                "reply addresses, so their commands run only when their "
                                "mail is otherwise authenticated", SECRET_HINT))
    return warnings


class DaemonSettings(Frozen):
    """The long-running service (`run.py run`)."""

    # How often the clock loop asks the store for due timers.
    clock_tick: Duration = timedelta(seconds=1)
    # How often the files under config/, workflows/ and mail_templates/ are checked for
    # changes, which reload the configuration (SIGHUP reloads at once).
    reload_check: Duration = timedelta(seconds=2)


NO_DEFAULT_CALENDAR = ("there is no `default` calendar; add calendars.default (timeouts that "
                       "name no calendar use it)")


class Settings(Frozen):
    site: SiteSettings = SiteSettings()
    mail: MailSettings = MailSettings()
    imap: ImapSettings = ImapSettings()
    smtp: SmtpSettings = SmtpSettings()
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    daemon: DaemonSettings = DaemonSettings()
    duplicates: DuplicatesSettings = DuplicatesSettings()
    calendars: dict[Name, Calendar] = Field(default_factory=default_calendars)

    @field_validator("calendars")
    @classmethod
    def _has_default(cls, calendars: dict[str, Calendar]) -> dict[str, Calendar]:
        if "default" not in calendars:
            raise ValueError(NO_DEFAULT_CALENDAR)
        return calendars


# Sections whose keys TIERDESK_<SECTION>_<KEY> may override.
ENV_SECTIONS: dict[str, type[Frozen]] = {
    "site": SiteSettings, "mail": MailSettings, "imap": ImapSettings,
    "smtp": SmtpSettings, "database": DatabaseSettings, "auth": AuthSettings,
    "daemon": DaemonSettings, "duplicates": DuplicatesSettings,
}


def env_variables() -> dict[str, tuple[str, str]]:
    """Every overriding variable and the (section, key) it sets."""
    return {
        f"{ENV_PREFIX}{section.upper()}_{key.upper()}": (section, key)
        for section, model in ENV_SECTIONS.items()
        for key in model.model_fields
    }


# ------------------------------------------------------------------ loading

def load_settings(config_dir: Path, environ: Mapping[str, str]) -> Settings:
    """Read config_dir/settings.yaml (all defaults when missing), apply overrides, validate."""
    path = config_dir / "settings.yaml"
    source = load_yaml(path) if path.exists() else Source(str(path), {}, {})
    if not isinstance(source.data, dict):
        raise ConfigError([source.problem((), "settings.yaml must be a mapping of sections",
                                          "start with e.g. `imap:` on the first line")])
    # An empty section (`smtp:` with nothing under it) means its defaults.
    data = {key: value for key, value in source.data.items() if value is not None}
    data, overridden, problems = apply_overrides(data, environ)
    try:
        # config_dir: a calendar's holidays_file is relative to it.
        settings = Settings.model_validate(data, context={"config_dir": config_dir})
    except ValidationError as exc:
        errors = model_errors(exc, data, Settings)
        problems += _problems(source, errors, overridden) + _no_default(source, data, errors)
        settings = None
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    return settings


def _no_default(source: Source, data: Mapping[str, Any],
                errors: list[ErrorDetails]) -> list[Problem]:
    """Settings._has_default runs only once every calendar is valid; a missing `default`
    is a problem of its own, reported in the same round as a broken calendar."""
    calendars = data.get("calendars")
    locs = [tuple(error["loc"]) for error in errors if error["loc"][:1] == ("calendars",)]
    # ("calendars",) itself: the validator did run; only errors inside a calendar hide it.
    if not isinstance(calendars, dict) or "default" in calendars or not locs \
            or ("calendars",) in locs:
        return []
    return [source.problem(("calendars",), f"calendars: {NO_DEFAULT_CALENDAR}")]  # as pydantic


def apply_overrides(
    data: dict[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[tuple[str, str], str], list[Problem]]:
    """Put TIERDESK_* values into `data`; return it, which paths came from which variable,
    and a problem for every TIERDESK_ variable that is no setting (typo protection)."""
    known = env_variables()
    overridden: dict[tuple[str, str], str] = {}
    problems: list[Problem] = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name.startswith(NON_SETTING_PREFIXES):
            continue
        if name not in known:
            problems.append(_unknown_variable(name, known))
            continue
        section, key = known[name]
        if isinstance(data.get(section, {}), dict):
            data = {**data, section: {**data.get(section, {}), key: environ[name]}}
            overridden[(section, key)] = name
    return data, overridden, problems


def _unknown_variable(name: str, known: Mapping[str, object]) -> Problem:
    close = difflib.get_close_matches(name, list(known), n=1)
    fix = f"did you mean {close[0]}?" if close else "see the README's list of TIERDESK_ variables"
    return Problem(name, 0, "environment variable is not a Tierdesk setting", fix)



def _problems(source: Source, errors: list[ErrorDetails],
              overridden: Mapping[tuple[str, str], str]) -> list[Problem]:
    """File errors get file:line from the YAML; errors in overridden values name the variable."""
    from_env, from_file = [], []
    for error in errors:
        variable = overridden.get(tuple(error["loc"][:2]))  # type: ignore[arg-type]
        if variable:
            from_env.append(_env_problem(variable, error))
        else:
            from_file.append(error)
    return from_env + validation_problems(from_file, source)


def _env_problem(variable: str, error: ErrorDetails) -> Problem:
    problem, _, fix = describe(error).partition("; ")
    return Problem(variable, 0, problem, fix or "correct or unset the variable")
