"""Step 2 of a KYC check: disclosure requests and decisions, on both sides.

Asker: ``request`` sends a ``disclosure.request`` for a subject reference a peer gave in
its answer to one of our checks; ``record_response`` keeps the peer's decision.
Holder: ``record_request`` keeps a peer's request for a reference we gave it in our
answer to the query the request cites; an analyst then ``decide``s: grant (releasing
only the chosen fields) or deny (with a reason), and the decision goes back as a
``disclosure.response``. Requests are de-duplicated per reference: a repeat while the
first waits adds nothing for the analyst, and a repeat after the decision gets the same
decision at once.

A reader sees only the requests within its clearance: an inbound one whose local
subject, and an outbound one whose released details, are marked at most at its level
(others answer ``NotFound``). Each list or read is audited with the subjects shown.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

import protocol

from ..db.models import Disclosure, OutboxMessage, Subject
from ..schemas.kyc import DISCLOSABLE_FIELDS, DisclosureCreate, DisclosureDecision, DisclosureOut
from .actors import Actor
from .audit import AuditEvent, AuditLog
from .clearance import audit_subjects_returned, within_clearance
from .errors import Conflict, InvalidInput, NotFound
from .kyc import KycService
from .kyc_answers import answered_with, resolve_reference
from .outbox import DEFAULT_TTL, enqueue
from .peers import PeerRegistry, agreement_of


def disclosable(subject: Subject) -> dict[str, Any]:
    """A subject's fields as a ``disclosure.response`` would carry them."""
    return {
        "kind": subject.kind,
        "names": list(subject.names),
        "aliases": list(subject.aliases),
        "date_of_birth": subject.date_of_birth,
        "nationality": subject.nationality,
        "documents": list(subject.documents),
        "reason_category": subject.reason_category,
        "risk_level": subject.risk_level,
        "narrative": subject.narrative,
        "source_agency": subject.source_agency,
        "linked_licences": list(subject.linked_licence_numbers),
    }


class DisclosureService:
    def __init__(
        self, session: Session, identity: protocol.NodeIdentity, actor: Actor, now: datetime
    ) -> None:
        self.session, self.identity, self.actor, self.now = session, identity, actor, now
        self.peers = PeerRegistry(session, actor, now, own_node_id=identity.node_id)

    # -- asker -----------------------------------------------------------------------
    def request(self, data: DisclosureCreate) -> tuple[Disclosure, OutboxMessage]:
        check = KycService(self.session, self.identity, self.actor, self.now).get(data.check_id)
        answer = next((a for a in check.answers if a.peer == data.peer), None)
        hit = (
            next((h for h in (answer.hits or []) if h["reference"] == data.reference), None)
            if answer is not None
            else None
        )
        if hit is None:
            raise InvalidInput(
                "reference",
                f"{data.peer} gave no reference {data.reference} in its answer to this check",
            )
        if hit["kind"] != "subject":
            raise InvalidInput("reference", "a licensee answer already carries what is shared")
        peer = self.peers.get(data.peer)
        if peer.status != "active":
            raise InvalidInput("peer", f"peer {data.peer} is {peer.status}")
        waiting = self.session.execute(
            select(Disclosure.request_uuid)
            .outerjoin(OutboxMessage, OutboxMessage.message_id == Disclosure.message_id)
            .where(
                Disclosure.direction == "outbound",
                Disclosure.peer == peer.node_id,
                Disclosure.reference == data.reference,
                Disclosure.status == "pending",
                # A request the peer refused (quota_exceeded …) or that expired unsent
                # waits for nothing: it may be asked again.
                or_(
                    OutboxMessage.status.is_(None),
                    OutboxMessage.status.not_in(("failed", "expired")),
                ),
            )
        ).first()
        if waiting is not None:  # the holder answers one request per reference
            raise Conflict(
                f"a request for {data.reference} already waits for {peer.node_id}'s decision"
            )
        disclosure = Disclosure(
            request_uuid=str(uuid.uuid4()),
            direction="outbound",
            peer=peer.node_id,
            reference=data.reference,
            check_id=check.id,
            query_uuid=check.check_uuid,
            justification=data.justification,
            requested_by=self.actor.name,
            requested_at=self.now,
            status="pending",
        )
        self.session.add(disclosure)
        self.session.flush()
        payload = protocol.DisclosureRequest(
            request_id=disclosure.request_uuid,
            query_id=check.check_uuid,
            reference=data.reference,
            justification=data.justification,
            requested_by_role=self.actor.role,
        )
        sent = enqueue(self.session, self.identity, peer, payload, now=self.now, ttl=DEFAULT_TTL)
        disclosure.message_id = sent.message_id
        AuditLog(self.session).record(
            str(self.actor),
            "disclosure.request",
            now=self.now,
            target_kind="disclosure",
            target_id=disclosure.request_uuid,
            detail={
                "peer": peer.node_id,
                "reference": data.reference,
                "check": check.check_uuid,
                "justification": data.justification,
            },
        )
        return disclosure, sent

    # -- holder ----------------------------------------------------------------------
    def decide(
        self, disclosure_id: int, decision: DisclosureDecision
    ) -> tuple[Disclosure, OutboxMessage]:
        disclosure = self._get(disclosure_id)
        if disclosure.direction != "inbound":
            raise InvalidInput("disclosure", "only requests from peers are decided here")
        if disclosure.status != "pending":
            raise Conflict(f"disclosure {disclosure_id} was already {disclosure.status}")
        peer = self.peers.get(disclosure.peer)
        subject = self.session.get(Subject, disclosure.record_id)
        payload: protocol.DisclosureResponse
        if decision.decision == "grant":
            if subject is None or subject.deleted_at is not None:
                raise Conflict("the subject was deleted since the request; deny it instead")
            if not agreement_of(peer).allows_handling(subject.handling):
                raise InvalidInput(
                    "decision",
                    f"TLP:{subject.handling} is above the sharing agreement with {peer.node_id}",
                )
            values = disclosable(subject)
            chosen: list[str] = [f for f in DISCLOSABLE_FIELDS if f in decision.fields]
            details = protocol.DisclosedDetails.model_validate({f: values[f] for f in chosen})
            payload = protocol.DisclosureResponse(
                request_id=disclosure.request_uuid,
                reference=disclosure.reference,
                decision="granted",
                details=details,
                handling=subject.handling,
            )
            disclosure.status, disclosure.fields = "granted", chosen
            disclosure.details = details.model_dump(mode="json", exclude_defaults=True)
            disclosure.handling = subject.handling
        else:
            payload = protocol.DisclosureResponse(
                request_id=disclosure.request_uuid,
                reference=disclosure.reference,
                decision="denied",
                reason=decision.reason,
            )
            disclosure.status, disclosure.reason = "denied", decision.reason
        disclosure.decided_by, disclosure.decided_at = self.actor.name, self.now
        sent = enqueue(self.session, self.identity, peer, payload, now=self.now, ttl=DEFAULT_TTL)
        AuditLog(self.session).record(
            str(self.actor),
            f"disclosure.{decision.decision}",
            now=self.now,
            target_kind="disclosure",
            target_id=disclosure.request_uuid,
            detail={
                "peer": peer.node_id,
                "reference": disclosure.reference,
                "record": subject.ref if subject is not None else None,
                "fields": disclosure.fields or [],
                "reason": disclosure.reason,
            },
        )
        return disclosure, sent

    # -- reading ---------------------------------------------------------------------
    def _visible(self) -> Select[Any]:
        """Disclosures within the actor's clearance: by the local subject's level and by
        the level of what was released."""
        return (
            select(Disclosure)
            .outerjoin(
                Subject,
                (Disclosure.record_kind == "subject") & (Disclosure.record_id == Subject.id),
            )
            .where(
                or_(
                    Disclosure.handling.is_(None), within_clearance(Disclosure.handling, self.actor)
                ),
                or_(Subject.id.is_(None), within_clearance(Subject.handling, self.actor)),
            )
        )

    def _get(self, disclosure_id: int) -> Disclosure:
        disclosure: Disclosure | None = self.session.execute(
            self._visible().where(Disclosure.id == disclosure_id)
        ).scalar_one_or_none()
        if disclosure is None:
            raise NotFound(f"no disclosure {disclosure_id}")
        return disclosure

    def get(self, disclosure_id: int) -> DisclosureOut:
        """One request as a reader sees it; audited (``disclosure.read``)."""
        shown = self.view(self._get(disclosure_id))
        self._audit_shown("disclosure.read", [shown])
        return shown

    def recent(
        self, *, direction: str | None, status: str | None, limit: int, offset: int
    ) -> list[DisclosureOut]:
        """A page of requests, newest first; audited (``disclosure.list``)."""
        query = self._visible()
        if direction:
            query = query.where(Disclosure.direction == direction)
        if status:
            query = query.where(Disclosure.status == status)
        rows = self.session.execute(
            query.order_by(Disclosure.id.desc()).limit(limit).offset(offset)
        )
        shown = [self.view(d) for d in rows.scalars()]
        self._audit_shown("disclosure.list", shown)
        return shown

    def for_check(self, check_uuid: str) -> list[DisclosureOut]:
        """Our requests about one of our checks (within clearance), for the check's page:
        not audited apart, the page's read of the check names them."""
        rows = self.session.execute(
            self._visible()
            .where(Disclosure.direction == "outbound", Disclosure.query_uuid == check_uuid)
            .order_by(Disclosure.id.desc())
        )
        return [self.view(d) for d in rows.scalars()]

    def _audit_shown(self, action: str, shown: list[DisclosureOut]) -> None:
        """Name the local subjects shown and the peers' references whose details were."""
        audit_subjects_returned(
            self.session,
            self.actor,
            action,
            (d.record["ref"] for d in shown if d.record),
            now=self.now,
            disclosures=[d.id for d in shown],
            peer_subjects=[f"{d.peer}/{d.reference}" for d in shown if d.details],
        )

    def view(self, disclosure: Disclosure) -> DisclosureOut:
        record, error = None, None
        if disclosure.direction == "outbound" and disclosure.status == "pending":
            sent = self.session.execute(
                select(OutboxMessage.status, OutboxMessage.last_error).where(
                    OutboxMessage.message_id == disclosure.message_id
                )
            ).first()
            if sent is not None and sent.status in ("failed", "expired"):
                error = sent.last_error if sent.status == "failed" else "expired"
        if disclosure.direction == "inbound" and disclosure.status == "pending":
            subject = self.session.get(Subject, disclosure.record_id)
            if subject is not None and subject.deleted_at is None:
                record = {"ref": subject.ref, "handling": subject.handling, **disclosable(subject)}
        return DisclosureOut(
            id=disclosure.id,
            request_id=disclosure.request_uuid,
            direction=disclosure.direction,  # type: ignore[arg-type]
            peer=disclosure.peer,
            reference=disclosure.reference,
            check_id=disclosure.query_uuid,
            justification=disclosure.justification,
            requested_by=disclosure.requested_by,
            requested_at=disclosure.requested_at,
            status=disclosure.status,  # type: ignore[arg-type]
            decided_by=disclosure.decided_by,
            decided_at=disclosure.decided_at,
            fields=disclosure.fields,
            details=disclosure.details,
            handling=disclosure.handling,
            reason=disclosure.reason,
            record=record,
            error=error,
        )


def record_request(
    session: Session,
    peer_id: str,
    payload: protocol.DisclosureRequest,
    now: datetime,
    audit: list[AuditEvent],
) -> str | protocol.DisclosureResponse | None:
    """Keep a peer's disclosure request for an analyst. Returns why it is refused, the
    response to send at once (a repeat for a reference already decided gets the same
    decision), or None once kept (a repeated request is kept once)."""
    shared = resolve_reference(session, peer_id, payload.reference)
    if shared is None:
        return "no reference of ours to this peer has this value"
    if shared.record_kind != "subject":
        return "disclosure applies to subjects of interest; licensee answers carry what is shared"
    if payload.query_id is None or not answered_with(
        session, peer_id, payload.query_id, payload.reference
    ):
        return "no answer of ours to a query of this peer with this query_id gave this reference"
    exists = session.execute(
        select(Disclosure.id).where(
            Disclosure.direction == "inbound",
            Disclosure.peer == peer_id,
            Disclosure.request_uuid == payload.request_id,
        )
    ).first()
    if exists is not None:
        return None
    first = session.execute(
        select(Disclosure)
        .where(
            Disclosure.direction == "inbound",
            Disclosure.peer == peer_id,
            Disclosure.reference == payload.reference,
        )
        .order_by(Disclosure.id)
        .limit(1)
    ).scalar_one_or_none()
    if first is not None:
        return _repeated(first, payload, audit)
    session.add(
        Disclosure(
            request_uuid=payload.request_id,
            direction="inbound",
            peer=peer_id,
            reference=payload.reference,
            query_uuid=payload.query_id,
            record_kind=shared.record_kind,
            record_id=shared.record_id,
            justification=payload.justification,
            requested_by=f"{peer_id} ({payload.requested_by_role})",
            requested_at=now,
            status="pending",
        )
    )
    audit.append(
        AuditEvent(
            peer_id,
            "disclosure.request_received",
            "disclosure",
            payload.request_id,
            {"reference": payload.reference, "justification": payload.justification},
        )
    )
    return None


def _repeated(
    first: Disclosure, payload: protocol.DisclosureRequest, audit: list[AuditEvent]
) -> protocol.DisclosureResponse | None:
    """A second request for a reference: nothing new for the analyst; once the first is
    decided, the same decision (the same details, already released to this peer)."""
    response = None
    if first.status == "granted":
        response = protocol.DisclosureResponse(
            request_id=payload.request_id,
            reference=first.reference,
            decision="granted",
            details=protocol.DisclosedDetails.model_validate(first.details or {}),
            handling=first.handling,
        )
    elif first.status == "denied":
        response = protocol.DisclosureResponse(
            request_id=payload.request_id,
            reference=first.reference,
            decision="denied",
            reason=first.reason,
        )
    audit.append(
        AuditEvent(
            first.peer,
            "disclosure.request_repeated",
            "disclosure",
            payload.request_id,
            {
                "reference": payload.reference,
                "first_request": first.request_uuid,
                "status": first.status,
                "fields": (first.fields or []) if first.status == "granted" else [],
                "justification": payload.justification,
            },
        )
    )
    return response


def record_response(
    session: Session,
    peer_id: str,
    payload: protocol.DisclosureResponse,
    now: datetime,
    audit: list[AuditEvent],
) -> str | None:
    """Keep a peer's decision on one of our requests. Returns why it is refused, or None."""
    disclosure = session.execute(
        select(Disclosure).where(
            Disclosure.direction == "outbound",
            Disclosure.peer == peer_id,
            Disclosure.request_uuid == payload.request_id,
        )
    ).scalar_one_or_none()
    if disclosure is None or disclosure.reference != payload.reference:
        return "no request of ours to this peer matches this response"
    if disclosure.status == "pending":
        disclosure.status = payload.decision
        disclosure.decided_by, disclosure.decided_at = peer_id, now
        disclosure.reason, disclosure.handling = payload.reason, payload.handling
        if payload.details is not None:
            disclosure.details = payload.details.model_dump(mode="json", exclude_defaults=True)
            disclosure.fields = sorted(disclosure.details)
        audit.append(
            AuditEvent(
                peer_id,
                "disclosure.answered",
                "disclosure",
                payload.request_id,
                {
                    "decision": payload.decision,
                    "fields": disclosure.fields or [],
                    "reason": payload.reason,
                },
            )
        )
    return None
