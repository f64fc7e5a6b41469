"""The acceptance suite's deployment: the daemon (`run.py run`, a subprocess) against the
private Dovecot, a real aiosmtpd server and a SQLite file (tests/service/conftest.py)."""

from __future__ import annotations

import pytest

from tests.inbound.imap.servers import DovecotServer, ImapTestServer
from tests.outbound.smtp_server import smtp_server  # noqa: F401  (the fixture)
from tests.service.conftest import site  # noqa: F401  (the fixture)


@pytest.fixture
def imap_server(dovecot: DovecotServer) -> ImapTestServer:
    """Only the private Dovecot here: the story runs as it would in production."""
    return dovecot
