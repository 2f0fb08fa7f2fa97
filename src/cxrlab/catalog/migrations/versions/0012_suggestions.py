"""model-assisted reading: a project's detector run and the detector's boxes per image

``projects.suggest_run`` names the detector run whose boxes the viewer offers as suggestions (null: off, the
default) and ``projects.suggest_model_sha256`` the SHA-256 of its ``model.onnx`` when it was set;
``suggestions`` keeps the detector's boxes per image and model (computed once, in the background).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("suggest_run", sa.Text(), nullable=True))
        batch.add_column(sa.Column("suggest_model_sha256", sa.String(length=64), nullable=True))
    op.create_table(
        "suggestions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_pk", sa.Integer(), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=False),
        sa.Column("boxes", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["image_pk"], ["images.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("image_pk", "model_sha256", name="uq_suggestion_image_model"),
    )
    op.create_index(op.f("ix_suggestions_image_pk"), "suggestions", ["image_pk"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_suggestions_image_pk"), table_name="suggestions")
    op.drop_table("suggestions")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("suggest_model_sha256")
        batch.drop_column("suggest_run")
