"""Fixtures of the command tests: the shipped config with a signing secret."""

from __future__ import annotations

import pytest

from daemon.inbound.ingest import Inbox
from tests.inbound.commands.desk import build_inbox, config


@pytest.fixture(scope="session")
def inbox() -> Inbox:
    return build_inbox(config())
