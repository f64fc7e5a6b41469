"""A server's refusal reaches the operator as the server's words, not as a Python bytes
literal: `run --once` with a wrong IMAP password, in a real process, against both real
IMAP servers (tests/inbound/imap/servers.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.inbound.imap.servers import ImapTestServer
from tests.outbound.smtp_server import SmtpServer, smtp_server  # noqa: F401  (the fixture)
from tests.processes import pythonpath
from tests.sites import make_site

ROOT = Path(__file__).resolve().parents[2]


def test_a_wrong_imap_password_prints_the_servers_text(
        tmp_path: Path, imap_server: ImapTestServer, smtp_server: SmtpServer,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    root, _, _ = make_site(tmp_path, imap_server, smtp_server, monkeypatch,  # type: ignore[arg-type]
                           TIERDESK_IMAP_PASSWORD="wrong")
    done = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "run", "--once", "--config", str(root)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": pythonpath(ROOT)})
    [line] = [line for line in done.stdout.splitlines() if line.startswith("imap:")]
    assert done.returncode == 1, done.stdout + done.stderr
    assert "login refused" in line and "AUTHENTICATIONFAILED" in line, line
    assert "b'" not in line and 'b"' not in line and "\\r" not in line, line
    assert "Traceback" not in done.stdout + done.stderr
