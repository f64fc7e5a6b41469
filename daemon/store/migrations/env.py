"""Alembic environment. migrate() passes its open connection in config.attributes["connection"];
the alembic CLI (`alembic -c daemon/store/alembic.ini ...`) opens TIERDESK_DATABASE_URL instead."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from daemon.store.database import DEFAULT_URL, open_database
from daemon.store.models import Base, compared

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    # Batch mode lets later migrations ALTER tables on SQLite (it copies the table).
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=compared,  # the search index is no model (daemon/store/models.py)
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    return os.environ.get("TIERDESK_DATABASE_URL") or config.get_main_option(
        "sqlalchemy.url", DEFAULT_URL
    ) or DEFAULT_URL


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # migrate() holds it inside its own transaction
        _configure(connection)
        return
    database = open_database(_url())
    try:
        with database.engine.connect() as connection, connection.begin():
            _configure(connection)
    finally:
        database.close()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
