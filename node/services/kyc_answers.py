"""Answering a peer's ``kyc.query`` from our own records, under our sharing agreement
with that peer.

Only the record kinds the agreement names are searched, only matches scoring at least
``min_score`` are reported, and nothing above the agreed handling level is mentioned.
A licensee hit carries its KYC fields (legal name, licence number and type, status,
validity) and the full explanation. A subject hit carries only its score, kind,
handling and an opaque reference, with the names of the matching features but not their
details (which would quote the record). References are random and given per peer
(``SharedReference``): peers cannot link their answers, and a later
``disclosure.request`` can only name a record that peer was told about.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import protocol

from ..db.models import Peer, SharedReference
from ..matching.search import Hit, MatchQuery, find_candidates
from ..schemas.agreements import SharingAgreement
from .audit import AuditEvent
from .kyc import best_per_record, load_records, shared_licensee


def shared_reference(
    session: Session, peer_id: str, kind: str, record_id: int, now: datetime
) -> str:
    """Our reference for a record as told to ``peer_id``: the same one each time."""
    row = session.execute(
        select(SharedReference).where(
            SharedReference.peer == peer_id,
            SharedReference.record_kind == kind,
            SharedReference.record_id == record_id,
        )
    ).scalar_one_or_none()
    if row is None:
        row = SharedReference(
            reference=f"{kind[0]}-{secrets.token_urlsafe(18)}",
            peer=peer_id,
            record_kind=kind,
            record_id=record_id,
            created_at=now,
        )
        session.add(row)
        session.flush()
    return row.reference


def resolve_reference(session: Session, peer_id: str, reference: str) -> SharedReference | None:
    """The record behind a reference we gave ``peer_id`` (None for anything else)."""
    return session.execute(
        select(SharedReference).where(
            SharedReference.reference == reference, SharedReference.peer == peer_id
        )
    ).scalar_one_or_none()


def answer_query(
    session: Session,
    peer: Peer,
    agreement: SharingAgreement,
    query: protocol.KycQuery,
    *,
    now: datetime,
    min_score: int,
    audit: list[AuditEvent],
) -> protocol.KycResponse:
    kinds = tuple(agreement.kyc_record_kinds)
    found = find_candidates(
        session,
        MatchQuery.from_party(query.subject, kinds),
        limit=query.max_results * 2,
        min_score=min_score,
    )
    hits = best_per_record(found)
    records = load_records(session, hits)
    answer: list[protocol.KycHit] = []
    revealed: list[dict[str, Any]] = []
    for hit in hits:
        record = records.get((hit.record_kind, hit.record_id))
        if record is None or not agreement.allows_handling(record.handling):
            continue
        reference = shared_reference(session, peer.node_id, hit.record_kind, hit.record_id, now)
        answer.append(_hit(hit, record, reference))
        revealed.append(
            {
                "kind": hit.record_kind,
                "record": record.ref,
                "reference": reference,
                "score": hit.score,
                "fields": sorted(answer[-1].licensee.model_dump(exclude_none=True))
                if answer[-1].licensee
                else [],
            }
        )
        if len(answer) == query.max_results:
            break
    audit.append(
        AuditEvent(
            peer.node_id,
            "kyc.answered",
            "kyc_query",
            query.query_id,
            {
                "purpose": query.purpose,
                "requesting_role": query.requesting_role,
                "query": query.subject.model_dump(mode="json", exclude_none=True),
                "searched": list(kinds),
                "revealed": revealed,
            },
        )
    )
    return protocol.KycResponse(query_id=query.query_id, hits=answer)


def _hit(hit: Hit, record: Any, reference: str) -> protocol.KycHit:
    # Feature scores are contributions and may be negative (a differing nationality);
    # the protocol carries how much each feature counted for the match, from 0.
    if hit.record_kind == "licensee":
        explanation = [
            protocol.MatchFeature(feature=f.name, score=max(0, f.score), detail=f.detail[:200])
            for f in hit.features
        ]
        return protocol.KycHit(
            kind="licensee",
            score=hit.score,
            reference=reference,
            handling=record.handling,
            licensee=shared_licensee(record),
            explanation=explanation[:20],
        )
    explanation = [
        protocol.MatchFeature(feature=f.name, score=max(0, f.score)) for f in hit.features
    ]
    return protocol.KycHit(
        kind="subject",
        score=hit.score,
        reference=reference,
        handling=record.handling,
        explanation=explanation[:20],
    )
