"""Mails to a team go to each member when reply addresses are signed: a team address cannot
carry one member's signed Reply-To."""

from __future__ import annotations

from pathlib import Path

from daemon.outbound.recipients import per_member, resolve
from daemon.site.config import load_config
from daemon.workflow.facts import MailOrder

ROOT = Path(__file__).resolve().parents[3]
DIRECTORY = load_config(ROOT, {}).directory


def test_a_team_mail_becomes_one_per_member() -> None:
    orders = per_member([MailOrder("escalation_handoff", "team", {"team": "tier2", "ref": "TD-1"}),
                         MailOrder("status_update", "requester", {"team": "tier2"})], DIRECTORY)
    assert [(o.template, o.to, o.context.get("member")) for o in orders] == [
        ("escalation_handoff", "member", "morgan.lee@example.com"),
        ("escalation_handoff", "member", "taylor.brooks@example.com"),
        ("status_update", "requester", None)]
    assert all(o.context["ref"] == "TD-1" for o in orders[:2])


def test_first_address_of_a_member_with_several() -> None:
    orders = per_member([MailOrder("reminder", "team", {"team": "tier1"})], DIRECTORY)
    assert [o.context["member"] for o in orders] == ["alex.chen@example.com",
                                                      "jordan.blake@example.com"]


def test_unknown_team_stays_as_it_is() -> None:
    order = MailOrder("reminder", "team", {"team": "nobody"})
    assert per_member([order], DIRECTORY) == (order,)


def test_member_role_resolves_inside_the_directory_only() -> None:
    found = resolve("member", {"member": "Robin.Okafor@example.com"}, DIRECTORY).recipient
    assert found is not None and (found.name, found.external) == ("Robin Okafor", False)
    missing = resolve("member", {"member": "mallory@evil.example"}, DIRECTORY)
    assert missing.recipient is None and "not in teams.yaml" in missing.reason
