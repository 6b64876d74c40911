"""Versioned migrations (Alembic), run programmatically: no alembic.ini at run time.

The scripts live in ``migrations/versions`` (package data). ``load_scripts`` reads them (blocking
file I/O: call it in a thread); ``upgrade`` and ``current`` take a sync connection, as given by
``AsyncConnection.run_sync``, so the database work itself stays async.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .schema import METADATA

__all__ = ["MIGRATIONS", "alembic_config", "configure", "current", "load_scripts", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the packaged scripts (and at ``url`` for the alembic API)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def load_scripts() -> ScriptDirectory:
    """Read the migration scripts and their revision graph (blocking: run in a thread)."""
    script = ScriptDirectory.from_config(alembic_config())
    script.get_heads()  # loads every revision now, not later on the event loop
    return script


def configure(context: EnvironmentContext, connection: sa.Connection) -> None:
    """The one migration configuration, shared by ``upgrade`` and ``migrations/env.py``."""
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )


def upgrade(connection: sa.Connection, script: ScriptDirectory) -> None:
    """Bring the database to the newest revision (``upgrade head``) in the caller's transaction."""

    def steps(revision: Any, _context: MigrationContext) -> Any:
        return script._upgrade_revs("head", revision)

    with EnvironmentContext(alembic_config(), script, fn=steps, destination_rev="head") as env:
        configure(env, connection)
        with env.begin_transaction():
            env.run_migrations()


def current(connection: sa.Connection) -> str | None:
    """The revision the database is at (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()
