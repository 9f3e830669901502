"""KYC checks asked by this node: local matching, then step 1 of the federated check.

A check matches the party against the local registry and subjects at once, and (scope
``federation``) sends a ``kyc.query`` to each chosen peer through the outbox, in the same
transaction. Each peer answers with a ``kyc.response`` (``record_answer``), possibly
after the check's deadline: a late answer is kept and shown when the check is reopened.
What a peer's part of a check looks like is read from its answer row and, while there
is none, from the delivery state of the query.

Hits are shown within the reader's clearance: a local or peer hit marked above it is
left out of what the check returns (and of what its creation records). Reading a
check again is audited (``kyc.read``) with the local subjects it shows.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, literal, null, select, union_all
from sqlalchemy.orm import Session, selectinload

import protocol
from protocol import RecordKind

from ..db.models import KycCheck, KycPeerAnswer, Licensee, OutboxMessage, Subject
from ..matching.search import Hit, MatchQuery, find_candidates
from ..roles import cleared_for
from ..schemas.kyc import (
    CheckCreate,
    CheckOut,
    CheckSummary,
    FeatureOut,
    HitOut,
    PeerAnswerOut,
    PeerState,
    strength,
)
from .actors import Actor
from .audit import AuditEvent, AuditLog
from .clearance import audit_subjects_returned
from .errors import InvalidInput, NotFound
from .outbox import enqueue
from .peers import PeerRegistry

# How long after a check stops waiting a peer's answer is still worth having (shown as
# late when the check is reopened). The check's wait plus this is its queries' deadline:
# their envelopes expire then, so they are neither delivered nor answered after it.
LATE_ANSWER_SECONDS = 600


def best_per_record(hits: Iterable[Hit]) -> list[Hit]:
    """One hit per record (a licensee may match through several of its persons), best
    first, keeping the order of ``hits``."""
    seen: set[tuple[str, int]] = set()
    kept = []
    for hit in hits:
        if (hit.record_kind, hit.record_id) not in seen:
            seen.add((hit.record_kind, hit.record_id))
            kept.append(hit)
    return kept


def _shown_fields(kind: RecordKind, model: type[Licensee] | type[Subject]) -> Select[Any]:
    """What a hit shows of a record of ``kind``; a column the other kind lacks is NULL
    (see ``_local_hit``, ``shared_licensee`` and ``kyc_answers``)."""
    names = (
        *("legal_name", "licence_number", "licence_type", "status", "issued_on", "expires_on"),
        *("reason_category", "risk_level", "nationality"),
    )
    columns = [
        getattr(model, name).label(name) if hasattr(model, name) else null().label(name)
        for name in names
    ]
    return select(literal(kind).label("kind"), model.id, model.ref, model.handling, *columns).where(
        model.id.in_(bindparam(kind, expanding=True))
    )


# Built once: both kinds in one statement.
_SHOWN_FIELDS = union_all(_shown_fields("licensee", Licensee), _shown_fields("subject", Subject))


def load_records(session: Session, hits: Sequence[Hit]) -> dict[tuple[str, int], Any]:
    """What the hits show of their licensee and subject rows, by (kind, id), read in
    one statement: only the columns shown, not whole records."""
    if not hits:
        return {}
    ids: dict[str, set[int]] = {"licensee": set(), "subject": set()}
    for hit in hits:
        ids[hit.record_kind].add(hit.record_id)
    rows = session.execute(_SHOWN_FIELDS, {kind: sorted(found) for kind, found in ids.items()})
    return {(row.kind, row.id): row for row in rows}


def shared_licensee(licensee: Licensee) -> protocol.SharedLicensee:
    """The licensee (KYC) fields a node may share with a peer."""
    return protocol.SharedLicensee(
        legal_name=licensee.legal_name,
        licence_number=licensee.licence_number,
        licence_type=licensee.licence_type,
        status=licensee.status,
        valid_from=licensee.issued_on.isoformat() if licensee.issued_on else None,
        valid_until=licensee.expires_on.isoformat() if licensee.expires_on else None,
    )


def _features(hit: Hit) -> list[FeatureOut]:
    return [FeatureOut(feature=f.name, score=f.score, detail=f.detail) for f in hit.features]


def _local_hit(hit: Hit, record: Any) -> HitOut:
    out = HitOut(
        kind=hit.record_kind,
        reference=record.ref,
        score=hit.score,
        strength=strength(hit.score),
        handling=record.handling,
        name=hit.name,
        explanation=_features(hit),
    )
    if hit.record_kind == "licensee":
        out.licensee = shared_licensee(record).model_dump(mode="json", exclude_none=True)
    else:
        out.subject = {
            "reason_category": record.reason_category,
            "risk_level": record.risk_level,
            "nationality": record.nationality,
        }
    return out


def _peer_hit(hit: dict[str, Any]) -> HitOut:
    return HitOut(
        kind=hit["kind"],
        reference=hit["reference"],
        score=hit["score"],
        strength=strength(hit["score"]),
        handling=hit["handling"],
        explanation=[FeatureOut(**f) for f in hit.get("explanation", [])],
        licensee=hit.get("licensee"),
    )


class KycService:
    def __init__(
        self, session: Session, identity: protocol.NodeIdentity, actor: Actor, now: datetime
    ) -> None:
        self.session, self.identity, self.actor, self.now = session, identity, actor, now
        self.peers = PeerRegistry(session, actor, now, own_node_id=identity.node_id)

    def start(self, data: CheckCreate, *, timeout: float) -> tuple[KycCheck, list[str]]:
        """Run the local part, queue one ``kyc.query`` per peer asked; return the check
        and the ids of the queued messages (not committed here)."""
        peers = self._choose_peers(data) if data.scope == "federation" else []
        hits = best_per_record(
            find_candidates(
                self.session, MatchQuery.from_party(data.party), limit=data.max_results * 2
            )
        )[: data.max_results]
        records = load_records(self.session, hits)
        local = [
            _local_hit(h, records[(h.record_kind, h.record_id)])
            for h in hits
            if (h.record_kind, h.record_id) in records
            and cleared_for(self.actor.clearance, records[(h.record_kind, h.record_id)].handling)
        ]
        query = data.party.model_dump(mode="json", exclude_none=True)
        check = KycCheck(
            check_uuid=str(uuid.uuid4()),
            created_at=self.now,
            created_by=self.actor.name,
            purpose=data.purpose,
            scope=data.scope,
            query=query,
            local_hits=[h.model_dump(mode="json", exclude_none=True) for h in local],
            deadline_at=self.now + timedelta(seconds=timeout),
            answers=[],  # known empty: viewing the new check loads nothing
        )
        self.session.add(check)
        payload = protocol.KycQuery(
            query_id=check.check_uuid,
            subject=data.party,
            purpose=data.purpose,
            requesting_role=self.actor.role,
            max_results=data.max_results,
        )
        sent = []
        for peer in peers:
            row = enqueue(
                self.session,
                self.identity,
                peer,
                payload,
                now=self.now,
                ttl=math.ceil(timeout + LATE_ANSWER_SECONDS),
            )
            check.answers.append(
                KycPeerAnswer(peer=peer.node_id, query_message_id=row.message_id, asked_at=self.now)
            )
            sent.append(row.message_id)
        AuditLog(self.session).record(
            str(self.actor),
            "kyc.check",
            now=self.now,
            target_kind="kyc_check",
            target_id=check.check_uuid,
            detail={
                "purpose": data.purpose,
                "scope": data.scope,
                "query": query,
                "peers": [p.node_id for p in peers],
                "local_hits": [
                    {"kind": h.kind, "reference": h.reference, "score": h.score} for h in local
                ],
            },
        )
        return check, sent

    def _choose_peers(self, data: CheckCreate) -> list[Any]:
        active = {p.node_id: p for p in self.peers.active()}
        if data.peers is None:
            return list(active.values())
        unknown = [p for p in data.peers if p not in active]
        if unknown:
            raise InvalidInput("peers", f"not active peers: {', '.join(unknown)}")
        return [active[p] for p in dict.fromkeys(data.peers)]

    # -- reading ---------------------------------------------------------------------
    def get(self, check_uuid: str) -> KycCheck:
        check = self.session.execute(
            select(KycCheck)
            .where(KycCheck.check_uuid == check_uuid)
            .options(selectinload(KycCheck.answers))
        ).scalar_one_or_none()
        if check is None:
            raise NotFound(f"no KYC check {check_uuid}")
        return check

    def recent(self, *, limit: int, offset: int) -> list[CheckSummary]:
        checks = self.session.execute(
            select(KycCheck)
            .options(selectinload(KycCheck.answers))
            .order_by(KycCheck.id.desc())
            .limit(limit)
            .offset(offset)
        ).scalars()
        return [
            CheckSummary(
                id=c.check_uuid,
                created_at=c.created_at,
                created_by=c.created_by,
                purpose=c.purpose,
                scope=c.scope,
                names=c.query.get("names", []),
                peers=len(c.answers),
            )
            for c in checks
        ]

    def view(self, check: KycCheck) -> CheckOut:
        """The check as an officer sees it now: local hits, and each peer's answer or
        why there is none."""
        waiting = [a.query_message_id for a in check.answers if a.answered_at is None]
        delivery = {}
        if waiting:
            delivery = {
                row.message_id: row
                for row in self.session.execute(
                    select(OutboxMessage).where(OutboxMessage.message_id.in_(waiting))
                ).scalars()
            }
        peers = [self._peer_view(check, a, delivery.get(a.query_message_id)) for a in check.answers]
        not_answered = [p.peer for p in peers if p.state != "answered"]
        return CheckOut(
            id=check.check_uuid,
            created_at=check.created_at,
            created_by=check.created_by,
            purpose=check.purpose,
            scope=check.scope,
            query=check.query,
            deadline_at=check.deadline_at,
            complete=all(p.state in ("answered", "refused", "expired") for p in peers),
            not_answered=not_answered,
            local=[HitOut(**h) for h in check.local_hits if self._cleared(h["handling"])],
            peers=peers,
        )

    def read(self, check_uuid: str) -> CheckOut:
        """A check as ``view`` shows it, audited (``kyc.read``) with the local subjects
        and peers' references it shows."""
        shown = self.view(self.get(check_uuid))
        audit_subjects_returned(
            self.session,
            self.actor,
            "kyc.read",
            (h.reference for h in shown.local if h.kind == "subject"),
            now=self.now,
            check=check_uuid,
            peer_subjects=[
                f"{p.peer}/{h.reference}"
                for p in shown.peers
                for h in p.hits
                if h.kind == "subject"
            ],
        )
        return shown

    def _cleared(self, handling: str) -> bool:
        return cleared_for(self.actor.clearance, handling)

    def _peer_view(
        self, check: KycCheck, answer: KycPeerAnswer, sent: OutboxMessage | None
    ) -> PeerAnswerOut:
        def view(
            state: PeerState, late: bool = False, hits: Sequence[HitOut] = ()
        ) -> PeerAnswerOut:
            return PeerAnswerOut(
                peer=answer.peer,
                asked_at=answer.asked_at,
                answered_at=answer.answered_at,
                state=state,
                late=late,
                error=sent.last_error if sent is not None and state != "answered" else None,
                hits=list(hits),
            )

        if answer.answered_at is not None:
            late = answer.answered_at > check.deadline_at
            hits = [_peer_hit(h) for h in answer.hits or [] if self._cleared(h["handling"])]
            return view("answered", late, hits)
        if sent is not None and sent.status == "failed":
            return view("refused")
        if sent is not None and sent.status == "expired":
            return view("expired")
        return view("waiting" if self.now < check.deadline_at else "no_answer")


def record_answer(
    session: Session,
    peer_id: str,
    payload: protocol.KycResponse,
    now: datetime,
    audit: list[AuditEvent],
) -> bool:
    """Keep a peer's answer to one of our queries. False when no query of ours to that
    peer has this id (the caller refuses the message)."""
    answer = session.execute(
        select(KycPeerAnswer)
        .join(KycCheck)
        .where(KycCheck.check_uuid == payload.query_id, KycPeerAnswer.peer == peer_id)
    ).scalar_one_or_none()
    if answer is None:
        return False
    if answer.answered_at is None:
        answer.answered_at = now
        answer.hits = [h.model_dump(mode="json", exclude_none=True) for h in payload.hits]
        audit.append(
            AuditEvent(
                peer_id,
                "kyc.answer_received",
                "kyc_check",
                payload.query_id,
                {
                    "hits": [
                        {"kind": h.kind, "reference": h.reference, "score": h.score}
                        for h in payload.hits
                    ]
                },
            )
        )
    return True
