"""`tierdesk release ADDRESS`: lift the new-ticket limit (mail.max_new_tickets_per_hour) for
an address whose new conversations are recorded on its latest ticket instead of opening
tickets (daemon/inbound/ticket_limit.py). Its tickets opened until now no longer count."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from daemon.cli.common import UserError
from daemon.cli.store import open_existing
from daemon.config.settings import Settings
from daemon.inbound.ticket_limit import held_mails, recent, release, spellings


def release_command(settings: Settings, address: str, now: datetime) -> int:
    if "@" not in address:
        raise UserError(f"{address!r} is not a mail address; write e.g. ann@example.org")
    limit = settings.mail.max_new_tickets_per_hour
    database = open_existing(settings.database.url)
    try:
        with database.transaction() as session:
            line = _release(session, address.strip(), limit, now)
    finally:
        database.close()
    print(line)
    return 0


def _release(session: Session, address: str, limit: int, now: datetime) -> str:
    """What was lifted, in one line; not held is a mistake (a typo, or already released)."""
    senders = recent(session, spellings(session, address, now), now)
    tickets = sum(s.tickets for s in senders.values())
    if tickets < limit:
        raise UserError(f"{address} is not held: {tickets} new ticket"
                        f"{'s' if tickets != 1 else ''} in the past hour counted "
                        f"(mail.max_new_tickets_per_hour is {limit})")
    held = sum(held_mails(session, a, s.since) for a, s in senders.items())
    release(session, address, now)
    return (f"released {address}: its {tickets} tickets of the past hour no longer count "
            f"({held} new conversation{'s' if held != 1 else ''} had been recorded without "
            "a ticket); its next new mail opens a ticket")
