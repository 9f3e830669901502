"""Answering a peer's ``kyc.query`` from our own records, under our sharing agreement
with that peer.

Only the record kinds the agreement names are searched, only matches scoring at least
``min_score`` are reported, and nothing above the agreed handling level is mentioned.
A licensee hit carries its shared KYC fields (legal name, licence number and type,
status, validity); every hit carries its score, kind, handling and an opaque reference,
and the names of the matching features with their scores, never their details (which
quote the stored record: a director's name, a date of birth). References are random and
given per peer (``SharedReference``): peers cannot link their answers. Each answer's
references are kept with its query id (``AnsweredReference``), so that a later
``disclosure.request`` can only cite a record that peer was told about in that answer.

The audit entry of an answer holds the answer itself, as sent, next to the records its
references stand for: what the peer learned is what the audit says.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import protocol

from ..db.models import AnsweredReference, Peer, SharedReference
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
    records_of: dict[str, str] = {}  # reference -> our record, for the audit
    for hit in hits:
        record = records.get((hit.record_kind, hit.record_id))
        if record is None or not agreement.allows_handling(record.handling):
            continue
        reference = shared_reference(session, peer.node_id, hit.record_kind, hit.record_id, now)
        answer.append(_hit(hit, record, reference))
        records_of[reference] = record.ref
        if len(answer) == query.max_results:
            break
    response = protocol.KycResponse(query_id=query.query_id, hits=answer)
    _remember_references(session, peer.node_id, query.query_id, list(records_of), now)
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
                "answer": sent_answer(response),
                "records": records_of,
            },
        )
    )
    return response


def sent_answer(response: protocol.KycResponse) -> dict[str, Any]:
    """An answer as the peer reads it once opened: the audit keeps exactly this."""
    return response.model_dump(mode="json", exclude_none=True)


def _remember_references(
    session: Session, peer_id: str, query_id: str, references: list[str], now: datetime
) -> None:
    if not references:
        return
    known = set(
        session.execute(
            select(AnsweredReference.reference).where(
                AnsweredReference.peer == peer_id, AnsweredReference.query_uuid == query_id
            )
        ).scalars()
    )
    for reference in references:
        if reference not in known:
            session.add(
                AnsweredReference(
                    peer=peer_id, query_uuid=query_id, reference=reference, answered_at=now
                )
            )


def answered_with(session: Session, peer_id: str, query_id: str, reference: str) -> bool:
    """Whether our answer to ``peer_id``'s query ``query_id`` carried ``reference``."""
    return (
        session.execute(
            select(AnsweredReference.id).where(
                AnsweredReference.peer == peer_id,
                AnsweredReference.query_uuid == query_id,
                AnsweredReference.reference == reference,
            )
        ).first()
        is not None
    )


def _hit(hit: Hit, record: Any, reference: str) -> protocol.KycHit:
    # Feature scores are contributions and may be negative (a differing nationality);
    # the protocol carries how much each feature counted for the match, from 0. A
    # feature's detail quotes the stored record, so it stays here.
    explanation = [
        protocol.MatchFeature(feature=f.name, score=max(0, f.score)) for f in hit.features
    ]
    return protocol.KycHit(
        kind=hit.record_kind,
        score=hit.score,
        reference=reference,
        handling=record.handling,
        licensee=shared_licensee(record) if hit.record_kind == "licensee" else None,
        explanation=explanation[:20],
    )
