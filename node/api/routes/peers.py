"""``/api/v1/peers``: admit, list, suspend, resume and remove peers, set their
sharing agreements, and approve or reject the endpoint changes their cards ask for.
Admins only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from ...schemas.agreements import SharingAgreement
from ...schemas.peers import EndpointDecision, PeerAdd, PeerOut
from ..deps import AsAdmin

router = APIRouter(prefix="/peers", tags=["peers"])


@router.get("", response_model=list[PeerOut], summary="List peers")
def list_peers(work: AsAdmin) -> Any:
    return work.peers().all()


@router.post(
    "",
    response_model=PeerOut,
    status_code=status.HTTP_201_CREATED,
    summary="Admit a peer whose fingerprint was verified in person",
)
def add_peer(work: AsAdmin, body: PeerAdd) -> Any:
    peer = work.peers().add(
        body.card, fingerprint=body.fingerprint, name=body.name, agreement=body.agreement
    )
    work.commit()
    return peer


@router.get("/{node_id}", response_model=PeerOut, summary="One peer")
def read_peer(work: AsAdmin, node_id: str) -> Any:
    return work.peers().get(node_id)


@router.put("/{node_id}/agreement", response_model=PeerOut, summary="Set the sharing agreement")
def set_agreement(work: AsAdmin, node_id: str, body: SharingAgreement) -> Any:
    peer = work.peers().set_agreement(node_id, body)
    work.commit()
    return peer


def _status_route(path: str, new_status: str, summary: str) -> None:
    @router.post(
        f"/{{node_id}}/{path}", response_model=PeerOut, summary=summary, name=f"{path}_peer"
    )
    def change(work: AsAdmin, node_id: str) -> Any:
        peer = work.peers().set_status(node_id, new_status)
        work.commit()
        return peer


@router.post(
    "/{node_id}/endpoint/approve",
    response_model=PeerOut,
    summary="Deliver to the endpoint the peer's newer card asks for",
    responses={409: {"description": "No endpoint change is waiting, or another one"}},
)
def approve_endpoint(work: AsAdmin, node_id: str, body: EndpointDecision | None = None) -> Any:
    peer = work.peers().approve_endpoint(node_id, body.endpoint if body else None)
    work.commit()
    return peer


@router.post(
    "/{node_id}/endpoint/reject",
    response_model=PeerOut,
    summary="Keep the current endpoint; forget the one the peer's card asks for",
    responses={409: {"description": "No endpoint change is waiting, or another one"}},
)
def reject_endpoint(work: AsAdmin, node_id: str, body: EndpointDecision | None = None) -> Any:
    peer = work.peers().reject_endpoint(node_id, body.endpoint if body else None)
    work.commit()
    return peer


_status_route("suspend", "suspended", "Stop exchanging with a peer (messages are refused)")
_status_route("resume", "active", "Resume exchanging with a suspended peer")


@router.delete("/{node_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a peer")
def remove_peer(work: AsAdmin, node_id: str) -> None:
    work.peers().set_status(node_id, "removed")
    work.commit()
