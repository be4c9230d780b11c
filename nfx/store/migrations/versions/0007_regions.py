"""Regions (issue #23): a job may carry a mask that maps areas of the photo to styles.

- jobs.mask_id: the mask picture, kept in the picture library like the photo (role "mask");
  NULL: the style covers the whole photo;
- jobs.regions: each mask colour's assignment, [["#ff0000", "1"], ["#000000", "photo"]].

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _jobs():
    """Alter jobs; on SQLite the rebuild (a foreign key needs one) keeps AUTOINCREMENT."""
    if op.get_bind().dialect.name == "sqlite":
        return op.batch_alter_table("jobs", recreate="always",
                                    table_kwargs={"sqlite_autoincrement": True})
    return op.batch_alter_table("jobs")


def upgrade() -> None:
    with _jobs() as jobs:
        jobs.add_column(sa.Column("mask_id", sa.Integer()))
        jobs.add_column(sa.Column("regions", sa.JSON()))
        jobs.create_foreign_key("fk_jobs_mask_id_images", "images", ["mask_id"], ["id"])


def downgrade() -> None:
    with _jobs() as jobs:
        jobs.drop_constraint("fk_jobs_mask_id_images", type_="foreignkey")
        jobs.drop_column("regions")
        jobs.drop_column("mask_id")
