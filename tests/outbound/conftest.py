"""Fixtures for the outbound-mail tests: the shipped config, its mail writer, a runtime that
renders mail in the caller's transaction. Databases come from tests/databases.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.outbound.writer import MailWriter
from daemon.site.config import Config, load_config
from daemon.tickets.runtime import Runtime
from tests.outbound.smtp_server import smtp_server  # noqa: F401  (the shared fixture)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(ROOT, {})


@pytest.fixture
def writer(config: Config) -> MailWriter:
    return MailWriter.from_config(config)


@pytest.fixture
def runtime(config: Config, writer: MailWriter) -> Runtime:
    return Runtime.build(config, mail_hook=writer)
