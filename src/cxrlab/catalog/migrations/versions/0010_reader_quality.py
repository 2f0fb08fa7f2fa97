"""reader quality: gold-standard tasks (tasks.gold, gold_standards)

``tasks.gold`` marks a reader's task on an image already decided (a gold-standard read, scored against the
image's decided marks and kept out of readings, reviews, consensus and releases); ``gold_standards`` keeps those
decided marks per project and image, where they came from and who marked the image as gold.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("gold", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "gold_standards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("image_pk", sa.Integer(), nullable=False),
        sa.Column("marks", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["image_pk"], ["images.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "image_pk", name="uq_gold_project_image"),
    )
    op.create_index(op.f("ix_gold_standards_project_id"), "gold_standards", ["project_id"], unique=False)
    op.create_index(op.f("ix_gold_standards_image_pk"), "gold_standards", ["image_pk"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_gold_standards_image_pk"), table_name="gold_standards")
    op.drop_index(op.f("ix_gold_standards_project_id"), table_name="gold_standards")
    op.drop_table("gold_standards")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("gold")
