"""A deployment for the daemon's end-to-end tests: the shipped config, an IMAP server (the
private Dovecot or the embedded one), a real aiosmtpd server and a SQLite file, all wired in
through TIERDESK_* variables; the daemon itself is `run.py run` in a subprocess."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from daemon.store.database import Database, open_database
from daemon.store.models import LoopHeartbeat, Outbox, Ticket
from tests.inbound.imap.servers import Account, ImapTestServer, client
from tests.outbound.smtp_server import SmtpServer, smtp_server  # noqa: F401  (the fixture)
from tests.service.daemon import Daemon
from tests.sites import make_site


@dataclass
class Site:
    root: Path
    cwd: Path
    imap: ImapTestServer
    account: Account
    smtp: SmtpServer
    database_url: str
    daemons: list[Daemon] = field(default_factory=list)

    def start(self, log_format: str = "json", **env: str) -> Daemon:
        daemon = Daemon(self.root, self.cwd, {**os.environ, **env}, log_format)
        self.daemons.append(daemon)
        daemon.started()
        return daemon

    def append(self, *raws: bytes) -> None:
        with client(self.imap, self.account) as imap:
            for raw in raws:
                imap.append("INBOX", raw)

    def query(self, model: Any) -> list[Any]:
        database = self.store()
        try:
            with database.reading() as session:
                return list(session.scalars(select(model)))
        finally:
            database.close()

    def tickets(self) -> list[Ticket]:
        return sorted(self.query(Ticket), key=lambda t: t.id)

    def outbox(self) -> list[Outbox]:
        return sorted(self.query(Outbox), key=lambda r: r.id)

    def heartbeats(self) -> list[LoopHeartbeat]:
        return self.query(LoopHeartbeat)

    def store(self) -> Database:
        return open_database(self.database_url)


@pytest.fixture
def site(tmp_path: Path, imap_server: ImapTestServer, smtp_server: SmtpServer,  # noqa: F811
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    root, account, url = make_site(tmp_path, imap_server, smtp_server,  # type: ignore[arg-type]
                                   monkeypatch)
    site = Site(root, tmp_path, imap_server, account, smtp_server, url)
    try:
        yield site
    finally:
        for daemon in site.daemons:
            daemon.kill()
