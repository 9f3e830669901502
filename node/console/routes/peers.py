"""Peers and delivery health, and this node's fingerprint to compare in person.
Admins only, as the peers API is."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from protocol import ALERT_CATEGORIES

from ...services.peers import agreement_of
from ..auth import AdminWork
from ..pages import page

router = APIRouter(prefix="/console/peers")


@router.get("", include_in_schema=False)
def peers(work: AdminWork) -> Response:
    registry, node = work.peers(), work.node
    depths = registry.outbox_depths()
    rows = [
        {
            "peer": peer,
            "agreement": agreement_of(peer),
            "pending": depths.get(peer.node_id, (0, None))[0],
            "oldest": depths.get(peer.node_id, (0, None))[1],
        }
        for peer in registry.all()
    ]
    return page(
        work.request,
        work.viewer,
        "peers.html",
        rows=rows,
        fingerprint=node.identity.fingerprint,
        public_url=node.settings.public_url,
        category_count=len(ALERT_CATEGORIES),
    )
