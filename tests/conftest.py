"""Fixtures shared by every test folder live in plugin modules, registered here."""

pytest_plugins = ["tests.databases", "tests.inbound.imap.servers"]
