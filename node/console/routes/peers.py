"""Peers and delivery health, and this node's fingerprint to compare in person.
Admins only, as the peers API is."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...api.deps import NodeDep, SessionDep
from ...services.agreements import ALERT_CATEGORIES
from ...services.peers import PeerRegistry, agreement_of
from ..auth import AdminViewer
from ..pages import page

router = APIRouter(prefix="/console/peers")


@router.get("", include_in_schema=False)
def peers(request: Request, node: NodeDep, session: SessionDep, viewer: AdminViewer) -> Response:
    registry = PeerRegistry(session, viewer.actor, node.now(), own_node_id=node.identity.node_id)
    depths = registry.outbox_depths()
    rows = [{"peer": peer, "agreement": agreement_of(peer),
             "pending": depths.get(peer.node_id, (0, None))[0],
             "oldest": depths.get(peer.node_id, (0, None))[1]}
            for peer in registry.list()]
    return page(request, viewer, "peers.html", rows=rows, fingerprint=node.identity.fingerprint,
                public_url=node.settings.public_url, category_count=len(ALERT_CATEGORIES))
