"""Everything a running node holds: settings, database, keys and card, clock, metrics.

Built once by ``open_node`` (the app lifespan and CLI commands use it) and handed to
request handlers through ``app.state.node``. The keys follow a rotation made by another
process without a restart (``node.keyring``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import protocol
from protocol import NodeCard, NodeIdentity

from .config import Settings
from .db import make_engine, make_session_factory, upgrade
from .keyring import KeyRing, load_keys
from .metrics import NodeMetrics

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Node:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keys: KeyRing
    clock: Clock = utc_now
    metrics: NodeMetrics = field(default_factory=NodeMetrics)
    reader: Engine | None = None  # the keys' read-only engine

    @property
    def identity(self) -> NodeIdentity:
        """The node's current keys, those of its card (and its fingerprint); they open
        whatever is sealed to any of the node's encryption keys."""
        return self.keys.loaded.identity

    @property
    def sealing(self) -> NodeIdentity:
        """The keys to sign and seal with now: after a rotation, the previous ones until
        every peer has the new card (``node.keyring``)."""
        return self.keys.sealing()

    @property
    def card(self) -> NodeCard:
        """The node's current card."""
        return self.keys.card

    def now(self) -> datetime:
        return self.clock()

    def open_envelope(
        self, raw: bytes, *, directory: protocol.KeyDirectory, now: datetime
    ) -> protocol.OpenedMessage:
        """Open an envelope addressed to this node. One sealed to an encryption key this
        process does not hold yet is retried once the keys are reloaded: another process
        may just have rotated them (or another thread of this one may have reloaded them
        since this attempt began: then the forced check finds nothing new, but the keys
        differ from those tried)."""
        while True:
            identity = self.identity
            try:
                return protocol.open_envelope(
                    raw,
                    identity=identity,
                    directory=directory,
                    now=int(now.timestamp()),
                    max_bytes=self.settings.max_message_bytes,
                    clock_skew=self.settings.clock_skew_seconds,
                )
            except protocol.WrongRecipient:
                if not self.keys.refresh(force=True) and self.identity is identity:
                    raise

    def close(self) -> None:
        self.engine.dispose()
        if self.reader is not None:
            self.reader.dispose()


def open_node(settings: Settings, *, migrate: bool = True, clock: Clock = utc_now) -> Node:
    """Open the node's database (upgrading it unless ``migrate`` is false) and keys."""
    engine = make_engine(settings.sqlalchemy_url)
    if migrate:
        upgrade(engine)
    sessions = make_session_factory(engine)
    # The keys' periodic check has a connection of its own, in sessions that never wait
    # for a writer: it may run inside a write transaction (SQLite takes the write lock at
    # BEGIN) or while every pooled connection is taken.
    reader = make_engine(settings.sqlalchemy_url, read_only=True, pool_size=1, max_overflow=0)
    keys = KeyRing(settings, sessions, make_session_factory(reader), clock, load_keys(settings))
    try:
        keys.sync()
    except BaseException:
        engine.dispose()
        reader.dispose()
        raise
    return Node(settings, engine, sessions, keys, clock, reader=reader)
