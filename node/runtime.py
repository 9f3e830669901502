"""Everything a running node holds: settings, database, keys and card, clock, metrics.

Built once by ``open_node`` (the app lifespan and CLI commands use it) and handed to
request handlers through ``app.state.node``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from protocol import NodeCard, NodeIdentity

from .config import Settings
from .db import make_engine, make_session_factory, upgrade
from .keystore import load_card, load_identity
from .metrics import NodeMetrics

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Node:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    identity: NodeIdentity
    card: NodeCard
    clock: Clock = utc_now
    metrics: NodeMetrics = field(default_factory=NodeMetrics)

    def now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        self.engine.dispose()


def open_node(settings: Settings, *, migrate: bool = True, clock: Clock = utc_now) -> Node:
    """Open the node's database (upgrading it unless ``migrate`` is false) and keys."""
    engine = make_engine(settings.sqlalchemy_url)
    if migrate:
        upgrade(engine)
    identity = load_identity(settings.keys_dir, settings.node_id)
    card = load_card(settings.card_path, identity)
    return Node(settings, engine, make_session_factory(engine), identity, card, clock)
