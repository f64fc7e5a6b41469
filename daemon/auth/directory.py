"""The teams directory (config/teams.yaml): teams and their members, vendors, the escalation
manager. Typed and frozen; loading reports every problem with file:line."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError

from daemon.config.frozen import Frozen
from daemon.config.problems import ConfigError, Problem
from daemon.config.settings import Duration, EmailAddress, Name
from daemon.config.validation import model_errors, validation_problems
from daemon.config.yamlsource import Source, load_yaml

CommandName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]


class Person(Frozen):
    name: str
    address: EmailAddress


class Member(Frozen):
    name: str
    # Every address the member writes from; commands are accepted from these only.
    addresses: tuple[EmailAddress, ...] = ()
    # Narrows the command tags the member's team may use; None means all of them.
    commands: tuple[CommandName, ...] | None = None

    def may_use(self, command: str) -> bool:
        return self.commands is None or command in self.commands


class Team(Frozen):
    name: str
    address: EmailAddress
    members: tuple[Member, ...] = ()


class Vendor(Frozen):
    name: str
    address: EmailAddress
    # The vendor's own response-time clock, counted on `calendar` (config/settings.yaml).
    respond_within: Duration
    calendar: Name = "default"


class Directory(Frozen):
    teams: Annotated[dict[Name, Team], Field(min_length=1)]
    vendors: dict[Name, Vendor] = {}
    escalation_manager: Person | None = None

    @cached_property
    def _by_address(self) -> dict[str, tuple[str, Member]]:
        return {
            address.lower(): (team_key, member)
            for team_key, team in self.teams.items()
            for member in team.members
            for address in member.addresses
        }

    def member_by_address(self, address: str) -> tuple[str, Member] | None:
        """The (team key, member) writing from `address`, compared case-insensitively."""
        return self._by_address.get(address.strip().lower())


def load_directory(path: Path) -> Directory:
    """Read and check teams.yaml; raise ConfigError listing every problem."""
    source = load_yaml(path)
    if not isinstance(source.data, dict):
        raise ConfigError([source.problem((), "teams.yaml must be a mapping",
                                          "start with `teams:` on the first line")])
    try:
        directory = Directory.model_validate(source.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(model_errors(exc, source.data, Directory),
                                              source)) from None
    problems = list(lint_directory(directory, source))
    if problems:
        raise ConfigError(problems)
    return directory


def lint_directory(directory: Directory, source: Source) -> Iterator[Problem]:
    """Mistakes the types cannot see: members who cannot be recognised, shared addresses."""
    seen: dict[str, tuple[str | int, ...]] = {}
    for where, address in _addresses(directory):
        key = address.lower()
        if key in seen:
            first = ".".join(str(p) for p in seen[key])
            yield source.problem(where, f"address {address} is also used at {first} "
                                 f"(line {source.line(seen[key])})",
                                 "each address may belong to one member, team or vendor only")
        else:
            seen[key] = where
    for team_key, team in directory.teams.items():
        for i, member in enumerate(team.members):
            if not member.addresses:
                yield source.problem(("teams", team_key, "members", i),
                                     f"member {member.name!r} has no addresses",
                                     "add `addresses: [name@example.com]`; commands are "
                                     "accepted only from a member's own addresses")


def _addresses(directory: Directory) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every address that must be unique, with its YAML path, in file order. The escalation
    manager is left out: they may well be a member of a team too."""
    for key, team in directory.teams.items():
        yield ("teams", key, "address"), team.address
        for i, member in enumerate(team.members):
            for j, address in enumerate(member.addresses):
                yield ("teams", key, "members", i, "addresses", j), address
    for key, vendor in directory.vendors.items():
        yield ("vendors", key, "address"), vendor.address
