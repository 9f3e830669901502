"""peers: an endpoint change a peer's card asks for, held until an admin approves it

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import node.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("peers") as batch:
        batch.add_column(sa.Column("pending_endpoint", sa.String(length=500), nullable=True))
        batch.add_column(
            sa.Column("pending_endpoint_at", node.db.types.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("peers") as batch:
        batch.drop_column("pending_endpoint_at")
        batch.drop_column("pending_endpoint")
