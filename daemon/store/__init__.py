"""The store: tickets, mail, audit trail, timers, outbox and IMAP cursors in one schema.

`database` opens and migrates (SQLite or PostgreSQL), `models` is the schema,
`repository` (tickets, events, timers, outbox), `messages` (stored mails) and `intake`
(mailbox cursor, quarantine) hold the small functions the loops call inside one transaction.
"""

from daemon.store.database import (
    DEFAULT_URL,
    Database,
    StoreError,
    current_revision,
    migrate,
    open_database,
)

__all__ = [
    "DEFAULT_URL",
    "Database",
    "StoreError",
    "current_revision",
    "migrate",
    "open_database",
]
