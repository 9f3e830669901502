"""Storage: models, engines and sessions, migrations.

``models`` defines the tables (SQLAlchemy 2, typed); ``session`` builds engines
(SQLite tuned for WAL, PostgreSQL via psycopg 3) and sessions; ``migrate`` runs the
Alembic migrations in ``migrations/``, which are the only way the schema changes.
"""

from .migrate import is_up_to_date, upgrade
from .session import make_engine, make_session_factory, reading, transaction

__all__ = [
    "is_up_to_date",
    "make_engine",
    "make_session_factory",
    "reading",
    "transaction",
    "upgrade",
]
