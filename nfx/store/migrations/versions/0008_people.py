"""People (issue #24): who queued what, and stars that are each person's own.

- batches.owner, jobs.owner: the signed-in email of who queued it; every existing row
  belongs to `local` (the one person of an app without sign-in, and the command line);
- stars (result_id, person): a person's favourites; the old results.favourite becomes
  `local`'s stars, and the column goes (tags stay shared, as they were).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

LOCAL = "local"  # nfx.people.LOCAL_NAME, written out: a migration never changes with the code
OWNER_LENGTH = 320


def _altered(table: str):
    """Alter a table; on SQLite the rebuild (dropping a column needs one) keeps
    AUTOINCREMENT (ids are never reused)."""
    if op.get_bind().dialect.name == "sqlite":
        return op.batch_alter_table(table, recreate="always",
                                    table_kwargs={"sqlite_autoincrement": True})
    return op.batch_alter_table(table)


def _owner() -> sa.Column:
    # a plain ADD COLUMN with a default: existing rows are local's, no table rebuild
    return sa.Column("owner", sa.String(OWNER_LENGTH), nullable=False, server_default=LOCAL)


def upgrade() -> None:
    for table in ("batches", "jobs"):
        op.add_column(table, _owner())
        op.create_index(f"ix_{table}_owner", table, ["owner"])
    op.create_table(
        "stars",
        sa.Column("result_id", sa.Integer(), sa.ForeignKey("results.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("person", sa.String(OWNER_LENGTH), primary_key=True),
    )
    op.create_index("ix_stars_person", "stars", ["person"])
    op.execute(sa.text("INSERT INTO stars (result_id, person) SELECT id, :local FROM results "
                       "WHERE favourite").bindparams(local=LOCAL))
    op.drop_index("ix_results_favourite", "results")
    with _altered("results") as results:
        results.drop_column("favourite")


def downgrade() -> None:
    with _altered("results") as results:
        results.add_column(sa.Column("favourite", sa.Boolean(), nullable=False,
                                     server_default=sa.false()))
    op.create_index("ix_results_favourite", "results", ["favourite"])
    op.execute(sa.text("UPDATE results SET favourite = :yes WHERE id IN "
                       "(SELECT result_id FROM stars)").bindparams(yes=True))
    op.drop_index("ix_stars_person", "stars")
    op.drop_table("stars")
    for table in ("jobs", "batches"):
        op.drop_index(f"ix_{table}_owner", table)
        with _altered(table) as altered:
            altered.drop_column("owner")
