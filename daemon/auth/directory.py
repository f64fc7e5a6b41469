"""The teams directory (config/teams.yaml): teams and their members, vendors, the escalation
manager. Typed and frozen; loading reports every problem with file:line."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

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
    directory: Directory | None = None
    problems: list[Problem] = []
    invalid: set[tuple[str | int, ...]] = set()
    try:
        directory = Directory.model_validate(source.data)
    except ValidationError as exc:
        errors = model_errors(exc, source.data, Directory)
        problems = validation_problems(errors, source)
        invalid = {tuple(error["loc"][:4]) for error in errors}
    # The lint reads the YAML itself, so a typo in one address does not hide a shared one.
    problems.extend(lint_directory(source, invalid))
    if problems:
        raise ConfigError(problems)
    assert directory is not None
    return directory


def lint_directory(source: Source,
                   invalid: Collection[tuple[str | int, ...]] = ()) -> Iterator[Problem]:
    """Mistakes the types cannot see: members who cannot be recognised, shared addresses.
    Read from the YAML as written (what is not of the right type is the model's to report);
    `invalid`: members the model already reported (a misspelt `addresses:` is not a second
    problem of having none)."""
    seen: dict[str, tuple[str | int, ...]] = {}
    for where, address in _addresses(source.data):
        key = address.lower()
        if key in seen:
            first = ".".join(str(p) for p in seen[key])
            yield source.problem(where, f"address {address} is also used at {first} "
                                 f"(line {source.line(seen[key])})",
                                 "each address may belong to one member, team or vendor only")
        else:
            seen[key] = where
    for team_key, team in mapping_items(source.data.get("teams")):
        for i, member in enumerate(_list(team.get("members"))):
            where = ("teams", team_key, "members", i)
            if isinstance(member, dict) and not member.get("addresses") and where not in invalid:
                yield source.problem(where, f"member {member.get('name')!r} has no addresses",
                                     "add `addresses: [name@example.com]`; commands are "
                                     "accepted only from a member's own addresses")


def mapping_items(value: object) -> Iterator[tuple[str, dict[str, Any]]]:
    """The (key, mapping) entries of a YAML mapping; anything else yields nothing."""
    if isinstance(value, dict):
        yield from ((key, entry) for key, entry in value.items() if isinstance(entry, dict))


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _addresses(data: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every address that must be unique, with its YAML path, in file order. The escalation
    manager is left out: they may well be a member of a team too."""
    for key, team in mapping_items(data.get("teams")):
        if isinstance(team.get("address"), str):
            yield ("teams", key, "address"), team["address"]
        for i, member in enumerate(_list(team.get("members"))):
            addresses = _list(member.get("addresses")) if isinstance(member, dict) else []
            for j, address in enumerate(addresses):
                if isinstance(address, str):
                    yield ("teams", key, "members", i, "addresses", j), address
    for key, vendor in mapping_items(data.get("vendors")):
        if isinstance(vendor.get("address"), str):
            yield ("vendors", key, "address"), vendor["address"]
