"""Alembic migration environment for Vigil (configured in code by `vigil.store.db`).

Run through `vigil.store.migrate()` / `open_database()`, which pass an open connection in
`config.attributes["connection"]`. Without one (a developer running the `alembic` command
with `-x`-less defaults), it connects to `sqlalchemy.url` or the configured Vigil database.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from vigil.store.models import Base
from vigil.store.types import UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Autogenerate writes Vigil's UTC type as a plain `sa.DateTime(timezone=True)`, so
    migrations never import application code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        **kwargs,
    )


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from vigil.config import get_settings

    return get_settings().effective_database_url


def run_migrations_offline() -> None:
    """Write the SQL to standard output instead of running it (`alembic upgrade --sql`)."""
    url = _url()
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from vigil.store.db import make_engine

    engine = make_engine(_url())
    try:
        with engine.begin() as own_connection:
            _run(own_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
