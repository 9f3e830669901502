"""``/api/v1/peers``: admit, list, suspend, resume and remove peers, and set their
sharing agreements. Admins only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field, StringConstraints

from ...services.agreements import SharingAgreement
from ...services.peers import PeerRegistry
from ..deps import Admin, NodeDep, SessionDep

router = APIRouter(prefix="/peers", tags=["peers"])


class PeerAdd(BaseModel):
    card: dict[str, Any] = Field(description="The peer's signed card (from `kpnet card`)")
    fingerprint: Annotated[str, StringConstraints(max_length=60)] = Field(
        description="The fingerprint read aloud by the peer's focal point, in person")
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    agreement: SharingAgreement | None = None


class PeerOut(BaseModel):
    node_id: str
    name: str
    endpoint: str
    fingerprint: str
    status: str
    agreement: SharingAgreement
    card_serial: int
    added_at: datetime
    added_by: str
    last_contact_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    next_attempt_at: datetime | None


def _registry(node: Any, session: Any, actor: Any) -> PeerRegistry:
    return PeerRegistry(session, actor, node.now(), own_node_id=node.identity.node_id)


@router.get("", response_model=list[PeerOut], summary="List peers")
def list_peers(node: NodeDep, session: SessionDep, actor: Admin) -> Any:
    return _registry(node, session, actor).list()


@router.post("", response_model=PeerOut, status_code=status.HTTP_201_CREATED,
             summary="Admit a peer whose fingerprint was verified in person")
def add_peer(node: NodeDep, session: SessionDep, actor: Admin, body: PeerAdd) -> Any:
    peer = _registry(node, session, actor).add(
        body.card, fingerprint=body.fingerprint, name=body.name, agreement=body.agreement)
    session.commit()
    return peer


@router.get("/{node_id}", response_model=PeerOut, summary="One peer")
def read_peer(node: NodeDep, session: SessionDep, actor: Admin, node_id: str) -> Any:
    return _registry(node, session, actor).get(node_id)


@router.put("/{node_id}/agreement", response_model=PeerOut, summary="Set the sharing agreement")
def set_agreement(node: NodeDep, session: SessionDep, actor: Admin, node_id: str,
                  body: SharingAgreement) -> Any:
    peer = _registry(node, session, actor).set_agreement(node_id, body)
    session.commit()
    return peer


def _status_route(path: str, new_status: str, summary: str) -> None:
    @router.post(f"/{{node_id}}/{path}", response_model=PeerOut, summary=summary,
                 name=f"{path}_peer")
    def change(node: NodeDep, session: SessionDep, actor: Admin, node_id: str) -> Any:
        peer = _registry(node, session, actor).set_status(node_id, new_status)
        session.commit()
        return peer


_status_route("suspend", "suspended", "Stop exchanging with a peer (messages are refused)")
_status_route("resume", "active", "Resume exchanging with a suspended peer")


@router.delete("/{node_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a peer")
def remove_peer(node: NodeDep, session: SessionDep, actor: Admin, node_id: str) -> None:
    _registry(node, session, actor).set_status(node_id, "removed")
    session.commit()
