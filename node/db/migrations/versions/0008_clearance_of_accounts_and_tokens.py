"""clearance: the highest TLP level each API token and console user may read

Existing rows get their role's default (``node.roles.DEFAULT_CLEARANCE``, written out
here so that the migration does not change if the defaults do).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE_DEFAULTS = {"admin": "CLEAR", "analyst": "RED", "officer": "AMBER", "auditor": "CLEAR"}
TABLES = ("api_tokens", "users")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("clearance", sa.String(12), nullable=True))
        rows = sa.table(table, sa.column("role", sa.String), sa.column("clearance", sa.String))
        for role, clearance in ROLE_DEFAULTS.items():
            op.execute(rows.update().where(rows.c.role == role).values(clearance=clearance))
        op.execute(rows.update().where(rows.c.clearance.is_(None)).values(clearance="CLEAR"))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("clearance", existing_type=sa.String(12), nullable=False)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("clearance")
