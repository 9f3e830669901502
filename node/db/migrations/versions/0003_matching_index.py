"""matching: KYC match records and their blocking keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:00:00.000000

The tables start empty: records that existed before this revision are indexed by
``kpnet kyc reindex`` (new and changed records are indexed as they are written).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _match_id() -> sa.types.TypeEngine[int]:
    # SQLite makes only an INTEGER primary key the (64-bit) rowid.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "match_records",
        sa.Column("id", _match_id(), autoincrement=False, nullable=False),
        sa.Column("record_kind", sa.String(length=10), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("party", sa.String(length=12), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("date_of_birth", sa.String(length=10), nullable=True),
        sa.Column("nationality", sa.String(length=2), nullable=True),
        sa.Column("identifiers", sa.JSON(), nullable=False),
        sa.Column("keys", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_records")),
    )
    op.create_table(
        "match_keys",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("match_id", _match_id(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("key", "match_id", name=op.f("pk_match_keys")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("match_keys")
    op.drop_table("match_records")
