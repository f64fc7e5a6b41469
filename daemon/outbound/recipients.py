"""Who a mail goes to: a recipient role (model.RECIPIENTS) resolved against the directory and
the ticket's facts. Pure: decides, never sends; a role that names nobody says why."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from email.utils import parseaddr
from functools import lru_cache
from typing import Any

from daemon.auth.directory import Directory
from daemon.mail.mime import HeaderError, check_address
from daemon.workflow.facts import MailOrder

# `external`: outside the organisation (the requester, a vendor, an address not in the
# directory). They never see internal notes, and loop protection and the hourly limit apply to
# them. Directory addresses (teams, members, the escalation manager) are ours: a burst of
# handoffs to a tier must never be throttled.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Recipient:
    name: str
    address: str
    role: str
    external: bool

    @property
    def key(self) -> str:
        """The address compared case-insensitively (loop protection, hourly counts)."""
        return self.address.lower()


@dataclass(frozen=True)
class Resolved:
    """A recipient, or the reason there is none (the mail is then skipped with it)."""

    recipient: Recipient | None
    reason: str = ""


def resolve(role: str, context: Mapping[str, Any], directory: Directory) -> Resolved:
    """The recipient `role` names for a mail with this context."""
    finder = _ROLES.get(role)
    if finder is None:
        return Resolved(None, f"unknown recipient role {role!r}")
    return finder(context, directory)


def _requester(context: Mapping[str, Any], directory: Directory) -> Resolved:
    return _requester_address("requester", context)


def _requester_address(role: str, context: Mapping[str, Any]) -> Resolved:
    if not context.get("requester"):  # the first mail's From named nobody for sure
        return Resolved(None, f"{role}: the ticket has no requester address")
    return _address(role, context.get("requester"), external=True)


def _linked(context: Mapping[str, Any], directory: Directory) -> Resolved:
    """The requester of a ticket linked to an incident: the runtime wrote the mail on that
    ticket with its requester in the context (daemon/tickets/runtime.py)."""
    return _requester_address("linked", context)


# Roles that write to a ticket's requester: answered on their thread, marked auto-replied.
REQUESTER_ROLES = frozenset({"requester", "linked"})


def _team(context: Mapping[str, Any], directory: Directory) -> Resolved:
    return _team_named(context.get("team"), "team", directory)


def _previous_team(context: Mapping[str, Any], directory: Directory) -> Resolved:
    return _team_named(context.get("previous_team"), "previous_team", directory)


def _team_named(key: object, role: str, directory: Directory) -> Resolved:
    if not key:
        return Resolved(None, f"the ticket has no {role.replace('_', ' ')}")
    team = directory.teams.get(str(key))
    if team is None:
        return Resolved(None, f"team {key!r} is not in teams.yaml")
    return Resolved(Recipient(team.name, team.address, role, external=False))


def _vendor(context: Mapping[str, Any], directory: Directory) -> Resolved:
    key = context.get("vendor")
    if not key:
        return Resolved(None, "the ticket has no vendor")
    vendor = directory.vendors.get(str(key))
    if vendor is None:
        return Resolved(None, f"vendor {key!r} is not in teams.yaml")
    return Resolved(Recipient(vendor.name, vendor.address, "vendor", external=True))


def _manager(context: Mapping[str, Any], directory: Directory) -> Resolved:
    person = directory.escalation_manager
    if person is None:
        return Resolved(None, "teams.yaml names no escalation_manager")
    return Resolved(Recipient(person.name, person.address, "escalation_manager", external=False))


def _assignee(context: Mapping[str, Any], directory: Directory) -> Resolved:
    who = context.get("assignee")
    if not who:
        return Resolved(None, "the ticket has no assignee")
    return _member(str(who), "assignee", directory)


def _actor(context: Mapping[str, Any], directory: Directory) -> Resolved:
    """The technician who issued a command; the requester when they caused the event."""
    who = str(context.get("actor") or "")
    if who == "requester":
        return _requester_address("actor", context)
    if "@" not in who:
        return Resolved(None, f"the actor {who or 'nobody'!r} has no address")
    return _member(who, "actor", directory)


def _one_member(context: Mapping[str, Any], directory: Directory) -> Resolved:
    """One member of a team, by the address `per_member` put in the context."""
    who = str(context.get("member") or "")
    found = directory.member_by_address(who) if who else None
    if found is None:
        return Resolved(None, f"member {who or 'nobody'!r} is not in teams.yaml")
    return Resolved(Recipient(found[1].name, who.strip(), "member", external=False))


def per_member(orders: Sequence[MailOrder], directory: Directory) -> tuple[MailOrder, ...]:
    """Each mail to a team as one mail per member, so each can carry that member's own
    signed reply address (a team address cannot); a team without members keeps its address."""
    return tuple(split for order in orders for split in _split(order, directory))


def _split(order: MailOrder, directory: Directory) -> tuple[MailOrder, ...]:
    team = directory.teams.get(str(order.context.get("team"))) if order.to == "team" else None
    if team is None or not team.members:
        return (order,)
    return tuple(replace(order, to="member", context={**order.context, "member": m.addresses[0]})
                 for m in team.members if m.addresses)


def _member(who: str, role: str, directory: Directory) -> Resolved:
    """A directory member by address or by name (`#assign to Morgan Lee`)."""
    found = directory.member_by_address(who)
    if found is not None:
        return Resolved(Recipient(found[1].name, who.strip(), role, external=False))
    for team in directory.teams.values():
        for member in team.members:
            if member.name.casefold() == who.strip().casefold() and member.addresses:
                return Resolved(Recipient(member.name, member.addresses[0], role, False))
    # Not in the directory: an address someone typed; treat it as outside the organisation.
    return _address(role, who, external=True)


def _address(role: str, value: object, *, external: bool) -> Resolved:
    return _parsed(role, str(value or ""), external)


@lru_cache(maxsize=1024)  # a batch acknowledges the same requesters over and over
def _parsed(role: str, text: str, external: bool) -> Resolved:
    if _CONTROL.search(text):  # parseaddr would quietly drop what follows a line break
        return Resolved(None, f"{role}: {text!r} contains a line break or control character")
    name, address = parseaddr(text)
    try:
        check_address(address)
    except HeaderError as exc:
        return Resolved(None, f"{role}: {exc}")
    return Resolved(Recipient(name, address, role, external))


_ROLES = {
    "requester": _requester, "team": _team, "previous_team": _previous_team,
    "assignee": _assignee, "vendor": _vendor, "escalation_manager": _manager, "actor": _actor,
    "member": _one_member, "linked": _linked,
}
