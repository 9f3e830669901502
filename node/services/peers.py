"""Peers: admission (card + fingerprint read aloud in person), status, sharing
agreement, key rotation, endpoint changes held for an admin's approval, and the key
directory the protocol opens messages with."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from protocol import (
    DEFAULT_CLOCK_SKEW,
    NodeCard,
    PublicKey,
    SenderInactive,
    b64decode,
    canonical_json,
    verify_card,
)

from ..db.models import OutboxMessage, Peer
from ..schemas.agreements import SharingAgreement
from .actors import Actor
from .audit import AuditLog
from .endpoint_policy import EndpointPolicy
from .errors import Conflict, InvalidInput, NotFound

PEER_STATUSES = ("active", "suspended", "removed")


def card_keys(card: NodeCard) -> list[dict[str, Any]]:
    return [key.model_dump(mode="json") for key in card.keys]


def agreement_of(peer: Peer) -> SharingAgreement:
    return SharingAgreement.model_validate(peer.agreement)


class PeerRegistry:
    def __init__(
        self,
        session: Session,
        actor: Actor,
        now: datetime,
        *,
        own_node_id: str,
        endpoints: EndpointPolicy | None = None,
    ) -> None:
        self.session, self.actor, self.now = session, actor, now
        self.own_node_id = own_node_id
        # Deny by default: without the node's settings, https to public addresses only.
        self.endpoints = endpoints or EndpointPolicy()
        self.audit = AuditLog(session)

    def _log(self, action: str, peer: Peer, **detail: Any) -> None:
        self.audit.record(
            str(self.actor),
            f"peer.{action}",
            now=self.now,
            target_kind="peer",
            target_id=peer.node_id,
            detail=detail,
        )

    def find(self, node_id: str) -> Peer | None:
        return self.session.execute(
            select(Peer).where(Peer.node_id == node_id)
        ).scalar_one_or_none()

    def get(self, node_id: str) -> Peer:
        peer = self.find(node_id)
        if peer is None or peer.status == "removed":
            raise NotFound(f"no peer {node_id}")
        return peer

    def all(self, *, include_removed: bool = False) -> list[Peer]:
        query = select(Peer).order_by(Peer.node_id)
        if not include_removed:
            query = query.where(Peer.status != "removed")
        return list(self.session.execute(query).scalars())

    def active(self) -> list[Peer]:
        return [p for p in self.all() if p.status == "active"]

    def outbox_depths(self) -> dict[str, tuple[int, datetime | None]]:
        """Per peer: messages waiting for delivery, and when the oldest was queued."""
        rows = self.session.execute(
            select(OutboxMessage.recipient, func.count(), func.min(OutboxMessage.created_at))
            .where(OutboxMessage.status == "pending")
            .group_by(OutboxMessage.recipient)
        )
        return {recipient: (count, oldest) for recipient, count, oldest in rows}

    def add(
        self,
        card_data: bytes | str | dict[str, Any],
        *,
        fingerprint: str,
        name: str | None = None,
        agreement: SharingAgreement | None = None,
    ) -> Peer:
        """Admit a peer. Raises ``CardInvalid``/``FingerprintMismatch`` for a bad card."""
        card = verify_card(
            card_data, expected_fingerprint=fingerprint, now=int(self.now.timestamp())
        )
        if card.node_id == self.own_node_id:
            raise InvalidInput("card", "this is our own card")
        existing = self.find(card.node_id)
        if existing is not None and existing.status != "removed":
            raise Conflict(f"peer {card.node_id} is already admitted")
        endpoint = self.endpoints.check_url(card.endpoints[0])
        values = dict(
            name=name or card.name,
            endpoint=endpoint,
            pending_endpoint=None,
            pending_endpoint_at=None,
            card=card.to_json(),
            card_serial=card.serial,
            keys=card_keys(card),
            fingerprint=card.fingerprint,
            status="active",
            agreement=(agreement or SharingAgreement()).model_dump(),
            added_at=self.now,
            added_by=self.actor.name,
            last_error=None,
            consecutive_failures=0,
            next_attempt_at=None,
        )
        if existing is not None:
            for key, value in values.items():
                setattr(existing, key, value)
            peer = existing
        else:
            peer = Peer(node_id=card.node_id, **values)
            self.session.add(peer)
        self.session.flush()
        self._log("add", peer, fingerprint=card.fingerprint, serial=card.serial)
        return peer

    def set_status(self, node_id: str, status: str) -> Peer:
        if status not in PEER_STATUSES:
            raise InvalidInput("status", f"must be one of {', '.join(PEER_STATUSES)}")
        peer = self.get(node_id)
        if peer.status != status:
            previous, peer.status = peer.status, status
            self._log(
                status
                if status == "removed"
                else {"active": "resume", "suspended": "suspend"}[status],
                peer,
                previous=previous,
            )
        return peer

    def set_agreement(self, node_id: str, agreement: SharingAgreement) -> Peer:
        peer = self.get(node_id)
        peer.agreement = agreement.model_dump()
        self._log("agreement", peer, **peer.agreement)
        return peer

    def apply_card_update(self, node_id: str, card: NodeCard) -> Peer:
        """Replace a peer's keys with those of its new card (already verified by the
        protocol: self-signed, sent in an envelope signed by the peer's current key).
        A new endpoint does not take effect: it waits for an admin's approval."""
        peer = self.get(node_id)
        if card.node_id != peer.node_id:
            raise InvalidInput("card", "card.update for another node")
        if card.serial <= peer.card_serial:
            raise Conflict(f"card serial {card.serial} is not newer than {peer.card_serial}")
        # Keys the new card no longer lists stay usable for verification until they expire.
        listed = {k["kid"] for k in card_keys(card)}
        now_ts = int(self.now.timestamp())
        kept = [k for k in peer.keys if k["kid"] not in listed and k["valid_until"] >= now_ts]
        peer.card, peer.card_serial = card.to_json(), card.serial
        peer.keys = card_keys(card) + kept
        peer.fingerprint = card.fingerprint
        self._log("card_update", peer, serial=card.serial, fingerprint=card.fingerprint)
        asked = card.endpoints[0]
        if asked == peer.endpoint:
            if peer.pending_endpoint is not None:  # the peer went back to what we use
                self._log("endpoint.withdrawn", peer, endpoint=peer.pending_endpoint)
                peer.pending_endpoint = peer.pending_endpoint_at = None
        elif asked != peer.pending_endpoint:
            peer.pending_endpoint, peer.pending_endpoint_at = asked, self.now
            self._log("endpoint.pending", peer, endpoint=asked, current=peer.endpoint)
        return peer

    def _pending(self, node_id: str, expected: str | None) -> tuple[Peer, str]:
        """The peer and its pending endpoint; ``expected`` (what the admin was shown)
        must still be it, so a later card.update cannot slip in under the decision."""
        peer = self.get(node_id)
        if peer.pending_endpoint is None:
            raise Conflict(f"peer {node_id} has no endpoint change waiting for approval")
        if expected is not None and expected != peer.pending_endpoint:
            raise Conflict(f"peer {node_id} now asks for another endpoint; review it again")
        return peer, peer.pending_endpoint

    def approve_endpoint(self, node_id: str, expected: str | None = None) -> Peer:
        """Deliver to the endpoint the peer's card asked for, if the endpoint policy
        allows it now (``EndpointRefused`` otherwise; the change stays pending)."""
        peer, endpoint = self._pending(node_id, expected)
        self.endpoints.check_url(endpoint)
        previous, peer.endpoint = peer.endpoint, endpoint
        peer.pending_endpoint = peer.pending_endpoint_at = None
        # A new place to deliver to: try it at once rather than after the old backoff.
        peer.next_attempt_at = None
        self._log("endpoint.approve", peer, endpoint=endpoint, previous=previous)
        return peer

    def reject_endpoint(self, node_id: str, expected: str | None = None) -> Peer:
        """Keep delivering to the current endpoint; forget the one the card asks for."""
        peer, endpoint = self._pending(node_id, expected)
        peer.pending_endpoint = peer.pending_endpoint_at = None
        self._log("endpoint.reject", peer, endpoint=endpoint, current=peer.endpoint)
        return peer


# Built once: the directory runs it for every inbound batch.
_PEER_BY_NODE_ID = select(Peer).where(Peer.node_id == bindparam("node_id"))


class PeerDirectory:
    """The protocol's ``KeyDirectory`` over the peers table: unknown or removed peers
    are unknown senders; suspended peers are refused as inactive."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._keys: dict[str, list[PublicKey]] = {}
        self._peers: dict[str, Peer | None] = {}

    def peer(self, node_id: str) -> Peer | None:
        """The peer row (looked up once per directory, i.e. per batch)."""
        if node_id not in self._peers:
            self._peers[node_id] = self.session.execute(
                _PEER_BY_NODE_ID, {"node_id": node_id}
            ).scalar_one_or_none()
        return self._peers[node_id]

    def keys_for(self, node_id: str) -> Sequence[PublicKey] | None:
        peer = self.peer(node_id)
        if peer is None or peer.status == "removed":
            return None
        if peer.status != "active":
            raise SenderInactive(f"peer {node_id} is {peer.status}")
        cache_key = f"{node_id}:{peer.card_serial}:{len(peer.keys)}"
        if cache_key not in self._keys:
            self._keys[cache_key] = [
                PublicKey(
                    k["kid"],
                    k["use"],
                    b64decode(k["public_key"]),
                    k["valid_from"],
                    k["valid_until"],
                )
                for k in peer.keys
            ]
        return self._keys[cache_key]


@lru_cache(maxsize=256)
def _verified_card(card_bytes: bytes) -> NodeCard:
    return verify_card(card_bytes)


def current_encryption_key(peer: Peer, now: datetime) -> PublicKey:
    """The peer's encryption key to seal to now (its stored card was verified on entry
    and is verified again here; the result is cached per card). Validity allows the
    protocol's clock skew: a peer whose clock is ahead of ours issues keys that are
    valid "from" a moment in our future."""
    card = _verified_card(canonical_json(peer.card))
    return card.current_key("enc", int(now.timestamp()), DEFAULT_CLOCK_SKEW)
