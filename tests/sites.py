"""A deployment for end-to-end tests: a copy of the shipped config, with the embedded IMAP
server, an aiosmtpd server and a SQLite file wired in through TIERDESK_* variables."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.inbound.imap.servers import Account, EmbeddedServer
from tests.outbound.smtp_server import SmtpServer

ROOT = Path(__file__).resolve().parent.parent


def make_site(tmp_path: Path, imap: EmbeddedServer, smtp: SmtpServer,
              monkeypatch: pytest.MonkeyPatch, **extra: str) -> tuple[Path, Account, str]:
    """The config root, the IMAP account and the database URL; `extra` adds variables."""
    root = tmp_path / "site"
    for folder in ("config", "workflows", "mail_templates"):
        shutil.copytree(ROOT / folder, root / folder)
    account = imap.new_account()
    url = f"sqlite:///{tmp_path / 'tierdesk.db'}"
    env = {
        "TIERDESK_IMAP_HOST": imap.host, "TIERDESK_IMAP_PORT": str(imap.port),
        "TIERDESK_IMAP_SECURITY": "none", "TIERDESK_IMAP_USERNAME": account.username,
        "TIERDESK_IMAP_PASSWORD": account.password, "TIERDESK_IMAP_TIMEOUT": "5s",
        "TIERDESK_SMTP_HOST": smtp.host, "TIERDESK_SMTP_PORT": str(smtp.port),
        "TIERDESK_SMTP_SECURITY": "none", "TIERDESK_SMTP_TIMEOUT": "5s",
        "TIERDESK_DATABASE_URL": url, **extra,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return root, account, url
