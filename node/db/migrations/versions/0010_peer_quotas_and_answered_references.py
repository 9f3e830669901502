"""kyc: per-peer daily quota counts, the references each answer to a peer carried, and
the message of each outbound disclosure request

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import node.db.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "peer_quota_use",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("peer", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_peer_quota_use")),
    )
    op.create_index(
        "uq_peer_quota_use_peer_kind_day", "peer_quota_use", ["peer", "kind", "day"], unique=True
    )
    op.create_table(
        "kyc_answered_references",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("peer", sa.String(length=20), nullable=False),
        sa.Column("query_uuid", sa.String(length=36), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("answered_at", node.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kyc_answered_references")),
    )
    op.create_index(
        "uq_kyc_answered_references_peer_query",
        "kyc_answered_references",
        ["peer", "query_uuid", "reference"],
        unique=True,
    )
    with op.batch_alter_table("disclosures") as batch:
        batch.add_column(sa.Column("message_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("disclosures") as batch:
        batch.drop_column("message_id")
    op.drop_index("uq_kyc_answered_references_peer_query", table_name="kyc_answered_references")
    op.drop_table("kyc_answered_references")
    op.drop_index("uq_peer_quota_use_peer_kind_day", table_name="peer_quota_use")
    op.drop_table("peer_quota_use")
