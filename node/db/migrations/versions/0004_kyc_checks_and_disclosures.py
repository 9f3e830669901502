"""kyc: checks, peers' answers, shared references and disclosures

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import node.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kyc_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("check_uuid", sa.String(length=36), nullable=False),
        sa.Column("created_at", node.db.types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=500), nullable=False),
        sa.Column("scope", sa.String(length=12), nullable=False),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column("local_hits", sa.JSON(), nullable=False),
        sa.Column("deadline_at", node.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kyc_checks")),
        sa.UniqueConstraint("check_uuid", name=op.f("uq_kyc_checks_check_uuid")),
    )
    op.create_table(
        "kyc_peer_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.Integer(), nullable=False),
        sa.Column("peer", sa.String(length=20), nullable=False),
        sa.Column("query_message_id", sa.String(length=36), nullable=False),
        sa.Column("asked_at", node.db.types.UTCDateTime(), nullable=False),
        sa.Column("answered_at", node.db.types.UTCDateTime(), nullable=True),
        sa.Column("hits", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["check_id"], ["kyc_checks.id"], name=op.f("fk_kyc_peer_answers_check_id_kyc_checks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kyc_peer_answers")),
        sa.UniqueConstraint("query_message_id", name=op.f("uq_kyc_peer_answers_query_message_id")),
    )
    op.create_index(op.f("ix_kyc_peer_answers_check_id"), "kyc_peer_answers", ["check_id"])
    op.create_table(
        "shared_references",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("peer", sa.String(length=20), nullable=False),
        sa.Column("record_kind", sa.String(length=10), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("created_at", node.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shared_references")),
        sa.UniqueConstraint("reference", name=op.f("uq_shared_references_reference")),
    )
    op.create_index(
        "uq_shared_references_peer_record",
        "shared_references",
        ["peer", "record_kind", "record_id"],
        unique=True,
    )
    op.create_table(
        "disclosures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_uuid", sa.String(length=36), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("peer", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("check_id", sa.Integer(), nullable=True),
        sa.Column("query_uuid", sa.String(length=36), nullable=True),
        sa.Column("record_kind", sa.String(length=10), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", node.db.types.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", node.db.types.UTCDateTime(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("handling", sa.String(length=12), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["check_id"], ["kyc_checks.id"], name=op.f("fk_disclosures_check_id_kyc_checks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disclosures")),
    )
    op.create_index(
        "uq_disclosures_peer_request",
        "disclosures",
        ["direction", "peer", "request_uuid"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("disclosures")
    op.drop_index("uq_shared_references_peer_record", table_name="shared_references")
    op.drop_table("shared_references")
    op.drop_index(op.f("ix_kyc_peer_answers_check_id"), table_name="kyc_peer_answers")
    op.drop_table("kyc_peer_answers")
    op.drop_table("kyc_checks")
