"""This node's keys as every process of the node uses them, across a key rotation.

The private keys live in the key directory, which every process of a node shares;
the serial of the current card lives in the database (``own_card``), which they share
too. ``kpnet keys rotate`` writes the new keys first and then, in one transaction,
queues the ``card.update`` for every peer and raises the serial. Each process compares
the serial with the one it loaded at most every ``CHECK_SECONDS`` (and at once when a
message arrives sealed to a key it does not hold) and reloads the key directory when
it changed: no restart.

Which keys are used (docs/protocol.md §10):

- opening: every encryption key the node holds (current and retired), so a message or
  receipt sealed to the new key opens from the moment the ``card.update`` is queued,
  and one sealed to an old key while that key's envelopes may still arrive;
- signing and sealing: while a ``card.update`` to an active peer is still undelivered
  and the previous keys are within their grace period, the *previous* signing and
  encryption keys, which every peer knows; once every peer has receipted the new card
  (or the grace period is over), the new keys. A peer therefore never sees a key
  before the card that announces it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from nacl.public import PrivateKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from protocol import NodeCard, NodeIdentity, PublicKey, key_id

from .config import Settings
from .db.models import OutboxMessage, OwnCard, Peer
from .keystore import (
    KeyFileError,
    load_card,
    load_identity,
    load_previous_signing,
    read_key_files,
)

log = logging.getLogger("kpnet.keys")

CHECK_SECONDS = 1.0  # how stale a process's idea of the current card may be
OWN_CARD_ROW = 1


@dataclass(frozen=True)
class LoadedKeys:
    """The key directory as read once: the current identity (which opens messages sealed
    to any key the node holds), its card, and the previous keys kept after a rotation."""

    identity: NodeIdentity
    card: NodeCard
    previous: NodeIdentity | None
    previous_until: int  # last second the previous keys are valid (0: none)


def load_keys(settings: Settings) -> LoadedKeys:
    identity = load_identity(settings.keys_dir, settings.node_id)
    card = load_card(settings.card_path, identity)
    previous, until = _previous(settings, identity, card)
    return LoadedKeys(identity, card, previous, until)


def _previous(
    settings: Settings, identity: NodeIdentity, card: NodeCard
) -> tuple[NodeIdentity | None, int]:
    """The previous signing key and the encryption key it went with, as one identity
    that still opens everything the current one opens; None without a rotation."""
    seeds = load_previous_signing(settings.keys_dir)
    listed = {k.kid: k for k in card.public_keys()}
    signing = [listed[kid] for kid in seeds if kid in listed and listed[kid].use == "sig"]
    if not signing:
        return None, 0
    secrets = {
        key_id(bytes(PrivateKey(data).public_key)): data
        for name, data in read_key_files(settings.keys_dir).items()
        if name.startswith("encryption.")
    }
    encryption: list[PublicKey] = sorted(
        (
            k
            for k in card.public_keys()
            if k.use == "enc" and k.kid != identity.encryption_kid and k.kid in secrets
        ),
        key=lambda k: k.valid_from,
    )
    if not encryption:
        return None, 0
    sig, enc = signing[0], encryption[-1]
    others = tuple(data for kid, data in secrets.items() if kid != enc.kid)
    previous = NodeIdentity(identity.node_id, seeds[sig.kid], secrets[enc.kid], others)
    return previous, min(sig.valid_until, enc.valid_until)


class KeyRing:
    """The keys one process of the node uses now; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        reader: sessionmaker[Session],
        clock: Callable[[], datetime],
        loaded: LoadedKeys,
    ) -> None:
        self._settings, self._sessions, self._reader = settings, sessions, reader
        self._clock = clock
        self._loaded = loaded
        self._announcing = False
        self._checked: float | None = None  # monotonic time of the last check
        self._complained: int | None = None  # the serial a mismatch was logged for
        self._lock = threading.Lock()

    @property
    def loaded(self) -> LoadedKeys:
        """The key directory as last loaded (its current identity signed the card)."""
        self.refresh()
        return self._loaded

    @property
    def card(self) -> NodeCard:
        return self.loaded.card

    def sealing(self) -> NodeIdentity:
        """The identity to sign and seal with now (it too opens what is sealed to any
        key the node holds)."""
        loaded = self.loaded
        if (
            self._announcing
            and loaded.previous is not None
            and int(self._clock().timestamp()) <= loaded.previous_until
        ):
            return loaded.previous
        return loaded.identity

    def sync(self) -> None:
        """Once, when the node opens: name the loaded card in the database if it is not
        named yet, or is older (restored keys, or a rotation interrupted before its
        announcement: the key directory wins); refuse keys older than the database's."""
        with self._lock, self._sessions() as session:
            row = session.get(OwnCard, OWN_CARD_ROW)
            serial = self._loaded.card.serial
            if row is None:
                session.add(OwnCard(id=OWN_CARD_ROW, serial=serial, updated_at=self._clock()))
            elif row.serial < serial:
                row.serial, row.updated_at = serial, self._clock()
            try:
                session.commit()
            except IntegrityError:  # another process named it first
                session.rollback()
            row = session.get(OwnCard, OWN_CARD_ROW, populate_existing=True)
            if row is not None and row.serial > serial and not self._reload(row.serial):
                raise KeyFileError(self._mismatch(row.serial))
            self._announcing = self._card_update_pending(session)
            self._checked = time.monotonic()

    def refresh(self, *, force: bool = False) -> bool:
        """Check the database for a new card (unless checked less than CHECK_SECONDS ago)
        and reload the key directory if there is one. True if the keys changed.

        Read only, in a session of its own that does not wait for writers (callers may
        be inside a write transaction of the same database)."""
        if (
            not force
            and self._checked is not None
            and time.monotonic() - self._checked < CHECK_SECONDS
        ):
            return False
        # Unless forced, a thread that finds another checking goes on with the keys it has.
        if not self._lock.acquire(blocking=force):
            return False
        try:
            self._checked = time.monotonic()
            with self._reader() as session:
                serial = session.execute(
                    select(OwnCard.serial).where(OwnCard.id == OWN_CARD_ROW)
                ).scalar_one_or_none()
                changed = False
                if serial is not None and serial > self._loaded.card.serial:
                    changed = self._reload(serial)
                    if not changed and self._complained != serial:
                        self._complained = serial  # once per serial, not every second
                        log.error("%s", self._mismatch(serial))
                self._announcing = self._card_update_pending(session)
            return changed
        finally:
            self._lock.release()

    def _mismatch(self, serial: int) -> str:
        return (
            f"the database names card serial {serial} but {self._settings.card_path} holds "
            f"serial {self._loaded.card.serial}: every process of a node must use the same "
            "key directory"
        )

    def _reload(self, serial: int) -> bool:
        loaded = load_keys(self._settings)
        if loaded.card.serial < serial:
            return False
        self._loaded = loaded
        return True

    @staticmethod
    def _card_update_pending(session: Session) -> bool:
        return (
            session.execute(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.msg_type == "card.update",
                    OutboxMessage.status == "pending",
                    OutboxMessage.recipient.in_(
                        select(Peer.node_id).where(Peer.status == "active")
                    ),
                )
                .limit(1)
            ).first()
            is not None
        )


def record_serial(session: Session, serial: int, now: datetime) -> None:
    """Name ``serial`` as the node's current card (in the caller's transaction)."""
    row = session.get(OwnCard, OWN_CARD_ROW)
    if row is None:
        session.add(OwnCard(id=OWN_CARD_ROW, serial=serial, updated_at=now))
    else:
        row.serial, row.updated_at = serial, now
