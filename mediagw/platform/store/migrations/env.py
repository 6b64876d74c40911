"""Alembic's environment, for writing a new revision with the alembic API (no alembic.ini):

    from alembic import command
    from mediagw.platform.store.migrate import alembic_config
    command.revision(alembic_config("sqlite:///store.db"), "what changes", autogenerate=True)

``Store.open`` does not run this file: it migrates through ``migrate.upgrade`` directly, with the
same configuration (``migrate.configure``), so opening a store reads no file on the event loop.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from mediagw.platform.store.migrate import configure

url = context.config.get_main_option("sqlalchemy.url")
if not url:
    raise SystemExit("no database URL: build the config with migrate.alembic_config(url)")
with sa.create_engine(url).connect() as connection:
    configure(context, connection)  # type: ignore[arg-type]  # the module proxies it
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
