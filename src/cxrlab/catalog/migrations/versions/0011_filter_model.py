"""filter model: image state needs_verification and the model's scores per image

``filter_scores`` holds the filter model's output for each image it decided (class, confidence, probabilities,
decision, audit sample). ``images.state`` gains the value ``needs_verification`` (the filter was not sure, or drew
the image into its audit sample); the column is a VARCHAR(20) without a CHECK constraint (``native_enum=False``),
so no column changes. Downgrading returns images waiting for verification to ``deidentified``: an older cxrlab
filters them again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "filter_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_pk", sa.Integer(), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=False),
        sa.Column("klass", sa.String(length=32), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("audit", sa.Boolean(), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["image_pk"], ["images.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("image_pk"),
    )


def downgrade() -> None:
    op.execute("UPDATE images SET state = 'deidentified', state_reason = NULL WHERE state = 'needs_verification'")
    op.drop_table("filter_scores")
