"""Favourites and tags on results; a workers table so the app can show who is working.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN: SQLite's table rebuild would fire jobs.result_id's ON DELETE
    op.add_column("results", sa.Column("favourite", sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.create_index("ix_results_favourite", "results", ["favourite"])
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
    )
    op.create_table(
        "result_tags",
        sa.Column("result_id", sa.Integer(), sa.ForeignKey("results.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("tag_id", sa.Integer(), sa.ForeignKey("tags.id", ondelete="CASCADE"),
                  primary_key=True),
    )
    op.create_index("ix_result_tags_tag_id", "result_tags", ["tag_id"])
    op.create_table(
        "workers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("lease_seconds", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime()),
        sa.Column("jobs_done", sa.Integer(), nullable=False),
        sa.Column("current_job_id", sa.Integer()),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("result_tags")
    op.drop_table("tags")
    with op.batch_alter_table("results") as batch:
        batch.drop_index("ix_results_favourite")
        batch.drop_column("favourite")
