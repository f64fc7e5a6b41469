"""An address held by the new-ticket limit (daemon/inbound/ticket_limit.py), as `status` lists it
(daemon/service/health.py) with the command that releases it. Pure: shared by both without either
importing the other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeldSender:
    """An outside address over mail.max_new_tickets_per_hour whose new conversations were
    recorded on its latest ticket instead of opening tickets (daemon/inbound/ticket_limit.py)."""

    address: str
    tickets: int    # opened in the past hour, since its last release
    held: int       # new conversations recorded on `ticket` meanwhile
    ticket: str     # the ref of its latest ticket
    limit: int

    @property
    def release(self) -> str:
        return release_command(self.address)


def release_command(address: str) -> str:
    """What lifts the hold on an address (daemon/cli/release.py)."""
    return f"tierdesk release {address}"
