"""Early-warning alerts: compose and send (outbound), store and acknowledge (inbound).

Creating, updating or retracting an alert writes the alert and one outbox message per
recipient in the caller's transaction (transactional outbox). The sharing agreement
with each peer decides who may receive it; those left out are recorded as
``withheld`` with the reason, and the caller is told.

Readers see only the alerts marked within their clearance (in lists, the live stream
and single reads, which answer ``NotFound`` above it); nobody sends an alert marked
above their own clearance.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import protocol

from ..db.models import Alert, AlertRecipient, Peer
from ..roles import cleared_for
from ..schemas.alerts import AcknowledgedAs, AlertCreate, AlertEdit
from .actors import Actor
from .audit import AuditLog
from .clearance import within_clearance
from .errors import Conflict, InvalidInput, NotFound
from .outbox import DEFAULT_TTL, enqueue
from .peers import PeerRegistry, agreement_of

LIVE_STATES = ("queued", "delivered", "read", "acted", "failed", "expired")


def _ts(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def to_payload(alert: Alert) -> protocol.Alert:
    """The protocol form of an alert (``alert``; ``alert.update`` from revision 2)."""
    model = protocol.AlertUpdate if alert.revision > 1 else protocol.Alert
    return model(
        alert_id=alert.alert_uuid,
        revision=alert.revision,
        category=alert.category,
        severity=alert.severity,
        title=alert.title,
        body=alert.body,
        subjects=[protocol.Party.model_validate(s) for s in alert.subjects],
        place=protocol.Place.model_validate(alert.place) if alert.place else None,
        handling=alert.handling,
        expires_at=_ts(alert.expires_at),
        references=list(alert.references),
        issued_at=_ts(alert.issued_at) or 0,
    )


class AlertService:
    def __init__(
        self, session: Session, identity: protocol.NodeIdentity, actor: Actor, now: datetime
    ) -> None:
        self.session, self.identity, self.actor, self.now = session, identity, actor, now
        self.audit = AuditLog(session)
        self.peers = PeerRegistry(session, actor, now, own_node_id=identity.node_id)

    # -- reading ---------------------------------------------------------------------
    def get(self, alert_id: int) -> Alert:
        alert: Alert | None = self.session.execute(
            select(Alert).where(Alert.id == alert_id, within_clearance(Alert.handling, self.actor))
        ).scalar_one_or_none()
        if alert is None:
            raise NotFound(f"no alert {alert_id}")
        return alert

    def recent(
        self, *, direction: str | None, limit: int, offset: int, after_id: int | None = None
    ) -> list[Alert]:
        query = select(Alert).where(within_clearance(Alert.handling, self.actor))
        if direction:
            query = query.where(Alert.direction == direction)
        if after_id is not None:
            query = query.where(Alert.id > after_id).order_by(Alert.id)
        else:
            query = query.order_by(Alert.id.desc())
        return list(self.session.execute(query.limit(limit).offset(offset)).scalars())

    # -- outbound --------------------------------------------------------------------
    def create(self, data: AlertCreate) -> Alert:
        recipients = self._choose_recipients(data.recipients)
        alert = Alert(
            alert_uuid=str(uuid.uuid4()),
            direction="outbound",
            origin=self.identity.node_id,
            revision=1,
            status="active",
            created_by=self.actor.name,
            updated_at=self.now,
            issued_at=self.now,
            **self._content(data),
        )
        self.session.add(alert)
        self.session.flush()
        for peer in recipients:
            refusal = agreement_of(peer).alert_refusal(alert.category, alert.handling)
            self._set_recipient(alert, peer.node_id, "withheld" if refusal else "queued", refusal)
            if refusal is None:
                self._send(alert, peer, to_payload(alert))
        self.audit.record(
            str(self.actor),
            "alert.create",
            now=self.now,
            target_kind="alert",
            target_id=alert.alert_uuid,
            detail=self._recipients_detail(alert),
        )
        return alert

    def update(self, alert_id: int, data: AlertEdit) -> Alert:
        alert = self._own(alert_id)
        for name, value in self._content(data).items():
            setattr(alert, name, value)
        alert.revision += 1
        alert.updated_at = self.now
        for recipient in list(alert.recipients):
            if recipient.state not in LIVE_STATES:
                continue
            peer = self.peers.find(recipient.peer)
            if peer is None or peer.status == "removed":
                continue
            refusal = agreement_of(peer).alert_refusal(alert.category, alert.handling)
            if refusal:
                # No longer shareable with this peer: withdraw what it already has.
                self._send(
                    alert,
                    peer,
                    protocol.AlertRetract(
                        alert_id=alert.alert_uuid, reason="withdrawn from this recipient"
                    ),
                )
                self._set_recipient(alert, peer.node_id, "withheld", refusal)
            else:
                self._send(alert, peer, to_payload(alert))
                self._set_recipient(alert, peer.node_id, "queued", None)
        self.audit.record(
            str(self.actor),
            "alert.update",
            now=self.now,
            target_kind="alert",
            target_id=alert.alert_uuid,
            detail={"revision": alert.revision},
        )
        return alert

    def retract(self, alert_id: int, reason: str) -> Alert:
        alert = self._own(alert_id)
        alert.status, alert.retract_reason, alert.updated_at = "retracted", reason, self.now
        for recipient in alert.recipients:
            peer = self.peers.find(recipient.peer)
            if recipient.state in LIVE_STATES and peer is not None and peer.status != "removed":
                self._send(
                    alert, peer, protocol.AlertRetract(alert_id=alert.alert_uuid, reason=reason)
                )
        self.audit.record(
            str(self.actor),
            "alert.retract",
            now=self.now,
            target_kind="alert",
            target_id=alert.alert_uuid,
            detail={"reason": reason},
        )
        return alert

    # -- inbound ---------------------------------------------------------------------
    def acknowledge(self, alert_id: int, status: AcknowledgedAs) -> Alert:
        """An officer marks an inbound alert read or acted upon; the origin is told."""
        alert = self.get(alert_id)
        if alert.direction != "inbound":
            raise InvalidInput("alert", "only received alerts are acknowledged")
        if status == "read" and alert.read_at is None:
            alert.read_at, alert.read_by = self.now, self.actor.name
        elif status == "acted":
            alert.read_at = alert.read_at or self.now
            alert.read_by = alert.read_by or self.actor.name
            alert.acted_at, alert.acted_by = self.now, self.actor.name
        peer = self.peers.find(alert.origin)
        if peer is not None and peer.status == "active" and alert.source_message_id:
            receipt = protocol.Receipt(
                message_id=alert.source_message_id, status=status, at=int(self.now.timestamp())
            )
            enqueue(self.session, self.identity, peer, receipt, now=self.now)
        self.audit.record(
            str(self.actor),
            f"alert.{status}",
            now=self.now,
            target_kind="alert",
            target_id=alert.alert_uuid,
            detail={"origin": alert.origin},
        )
        return alert

    # -- helpers ---------------------------------------------------------------------
    def _own(self, alert_id: int) -> Alert:
        alert = self.get(alert_id)
        if alert.direction != "outbound":
            raise InvalidInput("alert", "only alerts this node sent can be changed")
        if alert.status == "retracted":
            raise Conflict("this alert was retracted")
        return alert

    def _choose_recipients(self, names: list[str] | None) -> list[Peer]:
        active = {p.node_id: p for p in self.peers.active()}
        if names is None:
            return list(active.values())
        unknown = sorted(set(names) - active.keys())
        if unknown:
            raise InvalidInput("recipients", f"not active peers: {', '.join(unknown)}")
        return [active[n] for n in dict.fromkeys(names)]

    def _content(self, data: AlertCreate | AlertEdit) -> dict[str, Any]:
        if not cleared_for(self.actor.clearance, data.handling):
            raise InvalidInput("handling", f"above your clearance (TLP:{self.actor.clearance})")
        place = data.place.to_protocol() if data.place else None
        return {
            "category": data.category,
            "severity": data.severity,
            "title": data.title,
            "body": data.body,
            "handling": data.handling,
            "references": list(data.references),
            "subjects": [s.model_dump(mode="json", exclude_none=True) for s in data.subjects],
            "place": place.model_dump(mode="json", exclude_none=True) if place else None,
            "expires_at": data.expires_at.astimezone(UTC) if data.expires_at else None,
        }

    def _send(self, alert: Alert, peer: Peer, payload: protocol.Payload) -> None:
        ttl = DEFAULT_TTL
        if alert.expires_at is not None:
            # The message expires with the alert it carries (in whole seconds, as sealed).
            ttl = max(1, int(alert.expires_at.timestamp()) - int(self.now.timestamp()))
        enqueue(
            self.session, self.identity, peer, payload, now=self.now, ttl=ttl, alert_id=alert.id
        )

    def _set_recipient(self, alert: Alert, peer: str, state: str, reason: str | None) -> None:
        row = next((r for r in alert.recipients if r.peer == peer), None)
        if row is None:
            row = AlertRecipient(
                alert=alert, peer=peer, state=state, reason=reason, updated_at=self.now
            )
            self.session.add(row)
        else:
            row.state, row.reason, row.updated_at = state, reason, self.now

    @staticmethod
    def _recipients_detail(alert: Alert) -> dict[str, Any]:
        return {
            "category": alert.category,
            "handling": alert.handling,
            "sent_to": sorted(r.peer for r in alert.recipients if r.state != "withheld"),
            "withheld": sorted(r.peer for r in alert.recipients if r.state == "withheld"),
        }
