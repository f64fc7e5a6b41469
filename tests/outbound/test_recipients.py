"""Recipient roles resolved against the shipped directory."""

from __future__ import annotations

import pytest

from daemon.outbound.recipients import resolve
from daemon.site.config import Config

BASE = {"requester": "ann@example.org", "team": "tier2", "previous_team": "tier1",
        "vendor": "vpnco", "assignee": "morgan.lee@example.com", "actor": "alex.chen@example.com"}


@pytest.mark.parametrize(("role", "name", "address", "external"), [
    ("requester", "", "ann@example.org", True),
    ("team", "Tier 2 Systems", "tier2@example.com", False),
    ("previous_team", "Tier 1 Support", "tier1@example.com", False),
    ("vendor", "VPNCo Support", "support@vpnco.example", True),
    ("assignee", "Morgan Lee", "morgan.lee@example.com", False),
    ("escalation_manager", "Dana Whitfield", "dana.whitfield@example.com", False),
    ("actor", "Alex Chen", "alex.chen@example.com", False),
])
def test_every_role_resolves(config: Config, role: str, name: str, address: str,
                             external: bool) -> None:
    found = resolve(role, BASE, config.directory).recipient
    assert found is not None
    assert (found.name, found.address, found.role, found.external) == (
        name, address, role, external)


def test_a_requester_written_with_a_name_keeps_it(config: Config) -> None:
    found = resolve("requester", {"requester": "Ann Example <ann@example.org>"},
                    config.directory).recipient
    assert found is not None and (found.name, found.address) == ("Ann Example", "ann@example.org")


def test_assignee_by_member_name(config: Config) -> None:
    found = resolve("assignee", {"assignee": "robin okafor"}, config.directory).recipient
    assert found is not None and found.address == "robin.okafor@example.com"


@pytest.mark.parametrize(("role", "context", "words"), [
    ("team", {"team": None}, "has no team"),
    ("team", {"team": "tier9"}, "'tier9' is not in teams.yaml"),
    ("vendor", {"vendor": None}, "has no vendor"),
    ("actor", {"actor": "clock"}, "'clock' has no address"),
    ("requester", {"requester": "ann@example.org\r\nBcc: x@example.org"}, "line break"),
    ("requester", {"requester": "<>"}, "not a deliverable"),
    # A ticket opened by a mail whose From named nobody for sure (message.from_problem).
    ("requester", {"requester": ""}, "the ticket has no requester address"),
    ("actor", {"actor": "requester", "requester": ""}, "the ticket has no requester address"),
    ("boss", {}, "unknown recipient role 'boss'"),
])
def test_nobody_to_send_to_says_why(config: Config, role: str, context: dict[str, object],
                                    words: str) -> None:
    resolved = resolve(role, context, config.directory)
    assert resolved.recipient is None and words in resolved.reason


def test_the_requester_as_actor(config: Config) -> None:
    found = resolve("actor", {"actor": "requester", "requester": "ann@example.org"},
                    config.directory).recipient
    assert found is not None and found.address == "ann@example.org" and found.external
