"""Time left of a running job: jobs.seconds_left, which the worker measures from its pace over
the work done (iterations weighted by their cost, so that a long job's last scale counts as the
bulk it is) and the Queue page shows.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("seconds_left", sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("seconds_left")
