"""Alembic environment: NFX passes the open connection in `config.attributes`, so there is no
alembic.ini and no second connection (the caller holds the migration lock)."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True,
                  transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
