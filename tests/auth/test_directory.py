"""config/teams.yaml: typed directory, address lint, member lookup."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from daemon.auth.directory import load_directory
from daemon.config.problems import ConfigError, Problem
from daemon.config.settings import check_address

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """\
teams:
  tier1:
    name: Tier 1
    address: tier1@example.com
    members:
      - name: Alex
        addresses: [alex@example.com]
      - name: Jordan
        addresses: [jordan@example.com]
"""


def problems(tmp_path: Path, text: str) -> list[Problem]:
    path = tmp_path / "teams.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_directory(path)
    return caught.value.problems


def test_shipped_directory_loads() -> None:
    directory = load_directory(ROOT / "config" / "teams.yaml")
    assert set(directory.teams) == {"helpdesk", "tier1", "tier2", "tier3"}
    assert directory.vendors["vpnco"].respond_within == timedelta(days=1)
    assert directory.vendors["vpnco"].calendar == "24x7"
    assert directory.escalation_manager is not None
    taylor = directory.teams["tier2"].members[1]
    assert taylor.may_use("resolve") and not taylor.may_use("assign")


def test_member_by_address_ignores_case() -> None:
    directory = load_directory(ROOT / "config" / "teams.yaml")
    found = directory.member_by_address("JBlake@Example.COM")
    assert found is not None
    team, member = found
    assert (team, member.name) == ("tier1", "Jordan Blake")
    assert directory.member_by_address("stranger@example.com") is None


def test_address_used_twice(tmp_path: Path) -> None:
    text = MINIMAL.replace("[jordan@example.com]", "[Alex@example.com]")
    [problem] = problems(tmp_path, text)
    assert problem.line == 9
    assert "also used at teams.tier1.members.0.addresses.0 (line 7)" in problem.message


def test_member_address_equal_to_a_team_address(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, MINIMAL.replace("[jordan@example.com]", "[tier1@example.com]"))
    assert problem.line == 9 and "teams.tier1.address" in problem.message


def test_member_without_addresses(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, MINIMAL.replace("        addresses: [jordan@example.com]\n", ""))
    assert problem.line == 8 and "has no addresses" in problem.message


def test_unknown_key_lists_allowed_keys(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, MINIMAL.replace("        addresses: [alex@",
                                                   "        adresses: [alex@"))
    assert problem.line == 7
    assert "unknown key 'adresses'" in str(problem) and "addresses, commands" in str(problem)


def test_vendor_errors(tmp_path: Path) -> None:
    text = MINIMAL + ("vendors:\n  acme:\n    name: Acme\n    address: help@acme.example\n"
                      "    respond_within: soon\n")
    [problem] = problems(tmp_path, text)
    assert problem.line == 14 and "not a duration" in str(problem)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_directory(tmp_path / "teams.yaml")
    assert "cannot read file" in str(caught.value)


@pytest.mark.parametrize("address", [
    "alex@example.com", "a.b+tag@mail.example.co.uk", "o'brien@example.com", "x@localhost",
])
def test_valid_addresses(address: str) -> None:
    assert check_address(address) == address


@pytest.mark.parametrize("address", [
    "alex", "alex@", "@example.com", "alex@@example.com", "Alex <alex@example.com>",
    "alex example@example.com", "alex..b@example.com", ".alex@example.com",
    "alex@example..com", "alex@-example.com", "alex@example.com.", "alex@exa_mple.com",
    "a" * 65 + "@example.com",
])
def test_invalid_addresses(address: str) -> None:
    with pytest.raises(ValueError):
        check_address(address)


def test_invalid_address_in_file_is_reported_at_its_line(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, MINIMAL.replace("[jordan@example.com]", "[jordan.example.com]"))
    assert problem.line == 9 and "not a valid e-mail address" in str(problem)
