"""keys: the serial of this node's current card, for processes to notice a rotation

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import node.db.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The row itself is written when the node first opens its keys (node.keyring).
    op.create_table(
        "own_card",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("updated_at", node.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_own_card")),
    )


def downgrade() -> None:
    op.drop_table("own_card")
