"""What an accepted message does, one handler per message type.

Handlers run inside the transaction that records the message as received, so a
message's effects and its de-duplication row commit together or not at all. A handler
checks before it changes anything: what it creates or changes is final for the batch. A handler
raises ``NotPermitted`` when our sharing agreement with the sender refuses what it sent,
and ``QuotaExceeded`` when the sender has used up its daily quota of what it sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace

from sqlalchemy import select
from sqlalchemy.orm import Session

import protocol

from ..db.models import Alert, AlertRecipient, OutboxMessage, Peer
from ..schemas.agreements import SharingAgreement
from ..services.actors import Actor
from ..services.audit import AuditEvent
from ..services.disclosures import record_request, record_response
from ..services.kyc import record_answer
from ..services.kyc_answers import answer_query
from ..services.outbox import DEFAULT_TTL, enqueue
from ..services.peer_quotas import QuotaDefaults, QuotaKind, take
from ..services.peers import PeerRegistry

# A new alert's row, by column (every column but ``id``; those not set are NULL), with
# the attributes of an ``Alert``: not an ORM object, since it is written with the
# batch's others in one Core statement (``inbound``) and nothing reads it back.
NewAlert = SimpleNamespace
NEW_ALERT_COLUMNS = tuple(column.key for column in Alert.__table__.columns if column.key != "id")


class NotPermitted(protocol.EnvelopeError):
    """The message is valid but our sharing agreement with its sender refuses it."""

    code = "not_permitted"


class DeadlinePassed(NotPermitted):
    """A KYC query that arrives after its asker stopped waiting: not answered."""

    code = "expired"


class QuotaExceeded(NotPermitted):
    """The sender has used up its quota of this kind of message for the UTC day."""

    code = "quota_exceeded"


# A KYC query is answered until its deadline (its envelope's expiry) has passed by more
# than this on our clock: room for a small clock difference, not for a late answer.
KYC_DEADLINE_GRACE_SECONDS = 30


@dataclass
class Context:
    session: Session
    peer: Peer
    message: protocol.OpenedMessage
    now: datetime
    identity: protocol.NodeIdentity
    kyc_min_score: int
    agreement: SharingAgreement  # ours with the sender, read once per batch
    # The alerts of this batch, by (origin, alert id): those its envelopes name, looked
    # up together before they are handled (None: not stored yet), and those it created.
    # The batch flushes once at the end, so later envelopes of it find them here.
    alerts: dict[tuple[str, str], Alert | NewAlert | None] = field(default_factory=dict)
    # Alerts received for the first time in this batch: not added to the session, but
    # written together when the batch ends (``inbound``), with what later envelopes of
    # the batch changed in them.
    created: list[NewAlert] = field(default_factory=list)
    quotas: QuotaDefaults = field(default_factory=QuotaDefaults)
    audit: list[AuditEvent] = field(default_factory=list)
    new_alert: bool = False
    # An answer to one of our KYC queries or disclosure requests arrived.
    answered: bool = False
    # Messages queued in reply, to deliver at once once the batch commits.
    replies: list[str] = field(default_factory=list)


def _dt(ts: int | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _alert_values(payload: protocol.Alert) -> dict[str, object]:
    return {
        "revision": payload.revision,
        "category": payload.category,
        "severity": payload.severity,
        "title": payload.title,
        "body": payload.body,
        "subjects": [s.model_dump(mode="json", exclude_none=True) for s in payload.subjects],
        "place": payload.place.model_dump(mode="json", exclude_none=True)
        if payload.place
        else None,
        "handling": payload.handling,
        "references": list(payload.references),
        "issued_at": _dt(payload.issued_at),
        "expires_at": _dt(payload.expires_at),
    }


def _find_alert(ctx: Context, alert_uuid: str) -> Alert | NewAlert | None:
    key = (ctx.peer.node_id, alert_uuid)
    if key not in ctx.alerts:  # not looked up with the batch's others
        with ctx.session.no_autoflush:
            ctx.alerts[key] = ctx.session.execute(
                select(Alert).where(
                    Alert.origin == ctx.peer.node_id, Alert.alert_uuid == alert_uuid
                )
            ).scalar_one_or_none()
    return ctx.alerts[key]


def handle_alert(ctx: Context) -> None:
    payload = ctx.message.payload
    assert isinstance(payload, protocol.Alert)
    refusal = ctx.agreement.alert_refusal(payload.category, payload.handling)
    if refusal:
        raise NotPermitted(refusal)
    alert = _find_alert(ctx, payload.alert_id)
    if alert is None:
        created = NewAlert(
            **{
                **dict.fromkeys(NEW_ALERT_COLUMNS),
                **_alert_values(payload),
                "alert_uuid": payload.alert_id,
                "direction": "inbound",
                "origin": ctx.peer.node_id,
                "status": "active",
                "created_by": ctx.peer.node_id,
                "received_at": ctx.now,
                "updated_at": ctx.now,
                "source_message_id": ctx.message.id,
            }
        )
        ctx.created.append(created)
        ctx.alerts[(ctx.peer.node_id, payload.alert_id)] = created
        ctx.new_alert = True
    elif payload.revision > alert.revision:
        for name, value in _alert_values(payload).items():
            setattr(alert, name, value)
        alert.updated_at, alert.source_message_id = ctx.now, ctx.message.id
        alert.read_at = alert.read_by = alert.acted_at = alert.acted_by = None


def handle_alert_retract(ctx: Context) -> None:
    payload = ctx.message.payload
    assert isinstance(payload, protocol.AlertRetract)
    alert = _find_alert(ctx, payload.alert_id)
    if alert is not None:
        alert.status, alert.retract_reason, alert.updated_at = "retracted", payload.reason, ctx.now


def handle_receipt(ctx: Context) -> None:
    """A peer read or acted on something we sent: update that recipient's state."""
    payload = ctx.message.payload
    assert isinstance(payload, protocol.Receipt)
    sent = ctx.session.execute(
        select(OutboxMessage).where(
            OutboxMessage.message_id == payload.message_id,
            OutboxMessage.recipient == ctx.peer.node_id,
        )
    ).scalar_one_or_none()
    if sent is None or sent.alert_id is None or payload.status not in ("read", "acted"):
        return
    recipient = ctx.session.execute(
        select(AlertRecipient).where(
            AlertRecipient.alert_id == sent.alert_id, AlertRecipient.peer == ctx.peer.node_id
        )
    ).scalar_one_or_none()
    if recipient is not None and not (recipient.state == "acted" and payload.status == "read"):
        recipient.state, recipient.updated_at = payload.status, ctx.now


def handle_card_update(ctx: Context) -> None:
    payload = ctx.message.payload
    assert isinstance(payload, protocol.CardUpdate)
    registry = PeerRegistry(
        ctx.session, Actor(ctx.peer.node_id, "peer"), ctx.now, own_node_id=ctx.identity.node_id
    )
    # Only the key that signed the card we hold may replace it: an older key kept after a
    # rotation still verifies messages until it expires, but must not hand us a new card.
    if ctx.message.header.sender_sig_kid != ctx.peer.card["signed_by"]:
        raise NotPermitted("card.update must be signed with the key of the peer's current card")
    card = protocol.verify_card(payload.card.to_json())
    registry.apply_card_update(ctx.peer.node_id, card)


def _reply(ctx: Context, payload: protocol.Payload, ttl: int = DEFAULT_TTL) -> None:
    row = enqueue(
        ctx.session,
        ctx.identity,
        ctx.peer,
        payload,
        now=ctx.now,
        ttl=ttl,
        in_reply_to=ctx.message.id,
    )
    ctx.replies.append(row.message_id)


def _take_quota(ctx: Context, kind: QuotaKind) -> None:
    limit = ctx.quotas.limit(ctx.agreement, kind)
    if not take(ctx.session, ctx.peer.node_id, kind, limit, ctx.now):
        raise QuotaExceeded(
            f"{ctx.peer.node_id} has used its {limit} {kind} messages of this UTC day"
        )


def handle_kyc_query(ctx: Context) -> None:
    payload = ctx.message.payload
    assert isinstance(payload, protocol.KycQuery)
    agreement = ctx.agreement
    if not agreement.kyc_record_kinds:
        raise NotPermitted("KYC queries are not in the sharing agreement")
    # The query's expiry is its asker's deadline: past it, nobody waits for the answer.
    left = ctx.message.header.expires_at + KYC_DEADLINE_GRACE_SECONDS - int(ctx.now.timestamp())
    if left <= 0:
        raise DeadlinePassed("the asker's deadline for this query has passed")
    _take_quota(ctx, "kyc_query")
    _reply(
        ctx,
        answer_query(
            ctx.session,
            ctx.peer,
            agreement,
            payload,
            now=ctx.now,
            min_score=ctx.kyc_min_score,
            audit=ctx.audit,
        ),
        ttl=left,
    )


def handle_kyc_response(ctx: Context) -> None:
    payload = ctx.message.payload
    assert isinstance(payload, protocol.KycResponse)
    if not record_answer(ctx.session, ctx.peer.node_id, payload, ctx.now, ctx.audit):
        raise NotPermitted("no KYC query of ours to this peer has this query_id")
    ctx.answered = True


def handle_disclosure_request(ctx: Context) -> None:
    payload = ctx.message.payload
    assert isinstance(payload, protocol.DisclosureRequest)
    _take_quota(ctx, "disclosure_request")
    outcome = record_request(ctx.session, ctx.peer.node_id, payload, ctx.now, ctx.audit)
    if isinstance(outcome, str):
        raise NotPermitted(outcome)
    if outcome is not None:  # a repeated request for a decided reference: the same decision
        _reply(ctx, outcome)


def handle_disclosure_response(ctx: Context) -> None:
    payload = ctx.message.payload
    assert isinstance(payload, protocol.DisclosureResponse)
    refusal = record_response(ctx.session, ctx.peer.node_id, payload, ctx.now, ctx.audit)
    if refusal:
        raise NotPermitted(refusal)
    ctx.answered = True


Handler = Callable[[Context], None]
HANDLERS: dict[str, Handler] = {
    "alert": handle_alert,
    "alert.update": handle_alert,
    "alert.retract": handle_alert_retract,
    "receipt": handle_receipt,
    "card.update": handle_card_update,
    "kyc.query": handle_kyc_query,
    "kyc.response": handle_kyc_response,
    "disclosure.request": handle_disclosure_request,
    "disclosure.response": handle_disclosure_response,
}
