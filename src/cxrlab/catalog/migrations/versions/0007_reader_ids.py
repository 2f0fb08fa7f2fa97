"""reader ids for readers only: users.rad_id becomes nullable

Only annotators read images, so only they get a reader id (``rad_id``, the seeds' reader column); admins and
reviewers created from now on have none. Existing ids are kept as they are: a released ``rad_id`` never changes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a column in place (Alembic copies the table; PostgreSQL alters it).
    with op.batch_alter_table("users") as batch:
        batch.alter_column("rad_id", existing_type=sa.String(length=32), nullable=True)


def downgrade() -> None:
    # Give every user without a reader id one from a series readers never use, so the column can be NOT NULL.
    op.execute("UPDATE users SET rad_id = 'U' || CAST(id AS VARCHAR(30)) WHERE rad_id IS NULL")
    with op.batch_alter_table("users") as batch:
        batch.alter_column("rad_id", existing_type=sa.String(length=32), nullable=False)
