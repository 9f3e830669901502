"""Which card of this node is current, shared by every process of the node."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class OwnCard(Base):
    """The single row naming the serial of this node's current card.

    The keys themselves stay in the key directory; this row is what tells every process
    sharing the database that ``kpnet keys rotate`` has announced a new card, so it
    reloads its keys without a restart (``node.keyring``).
    """

    __tablename__ = "own_card"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[int]
    updated_at: Mapped[datetime]
