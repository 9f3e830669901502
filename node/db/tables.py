"""The Core table of a mapped class, for statements that skip the ORM's bookkeeping."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.orm import DeclarativeBase


def table_of(model: type[DeclarativeBase]) -> Table:
    """``model.__table__`` as the ``Table`` it is (SQLAlchemy types it as any FROM clause)."""
    table = model.__table__
    assert isinstance(table, Table), f"{model.__name__} is not mapped to a table"
    return table
