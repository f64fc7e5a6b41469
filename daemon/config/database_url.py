"""Which database URLs Tierdesk can open: one check for the settings (`check`) and the
store (`run`), pure so that config/ can call it without importing SQLAlchemy."""

from __future__ import annotations

import re

# The URL schemes the store opens (daemon/store/database.py): SQLite through the standard
# library, PostgreSQL through psycopg 3, the driver we ship (plain postgresql:// means it).
DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg", "postgres")
DATABASE_URL_HINT = ("use sqlite:///PATH such as sqlite:///tierdesk.db, or "
                     "postgresql+psycopg://user:password@host:5432/dbname")
# SQLAlchemy's own URL grammar (sqlalchemy.engine.url._parse_url), so that what passes here
# parses there too.
_DATABASE_URL = re.compile(r"""
    (?P<scheme>[\w+]+)://
    (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
    (?:(?:\[(?P<ipv6host>[^/?]+)\]|(?P<ipv4host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?
    (?:/(?P<database>.*))?
    """, re.VERBOSE)
_PASSWORD = re.compile(r"(://[^/@:]*:)[^@/]*@")


def hide_password(url: str) -> str:
    """The URL with its password replaced by ***, even when the text is no valid URL."""
    return _PASSWORD.sub(r"\1***@", url)


def database_url_problem(url: str) -> str | None:
    """Why the store cannot open `url` ("problem; fix"), or None. The one check of a database
    URL: settings validation (`check`, and `run` before it opens anything) and
    daemon.store.database both call it, so `check` passes exactly what `run` can open."""
    shown = hide_password(url)
    match = _DATABASE_URL.fullmatch(url)
    if match is None:
        return f"{shown!r} is not a database URL; {DATABASE_URL_HINT}"
    scheme = match["scheme"]
    if scheme not in DATABASE_SCHEMES:
        backend, _, driver = scheme.partition("+")
        what = (f"driver {driver!r}" if backend in ("sqlite", "postgresql") and driver
                else f"database {backend!r}")
        return f"{shown!r} names {what}, which Tierdesk cannot use; {DATABASE_URL_HINT}"
    if match["port"] and not match["port"].isdigit():
        return f"{shown!r} has port {match['port']!r}, not a number; {DATABASE_URL_HINT}"
    return None
