"""Peers and delivery health, this node's fingerprint to compare in person, and the
endpoint changes peers' cards ask for, approved or rejected here. Admins only, as the
peers API is."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from protocol import ALERT_CATEGORIES

from ...services.endpoint_policy import (
    ADDRESS,
    CREDENTIALS,
    NOT_A_URL,
    NOT_HTTPS,
    QUERY,
    EndpointRefused,
)
from ...services.errors import Conflict, NotFound
from ...services.peers import agreement_of
from ..auth import AdminWork, ConsoleWork
from ..csrf import AdminForm, Posted
from ..i18n import N_
from ..pages import Missing, page, redirect

router = APIRouter(prefix="/console/peers")

ENDPOINT_REFUSED = {
    ADDRESS: N_(
        "The address %(address)s is in a range this node does not send to (%(range)s). "
        "The operator may allow that range with KPNET_PEER_ALLOWED_NETWORKS."
    ),
    NOT_HTTPS: N_(
        "The endpoint is not an https:// address; plain http is allowed only with "
        "KPNET_PEER_ALLOW_HTTP."
    ),
    CREDENTIALS: N_("The endpoint carries a user name or password."),
    QUERY: N_("The endpoint has a query or a fragment."),
    NOT_A_URL: N_("The endpoint is not a valid address."),
}
NOTHING_PENDING = N_(
    "This peer has no endpoint change waiting, or has asked for another one since: review it again."
)
# The ranges ``endpoint_policy.address_range`` names.
RANGES = {
    "unspecified": N_("unspecified address"),
    "loopback": N_("loopback"),
    "link-local": N_("link-local"),
    "multicast": N_("multicast"),
    "private": N_("private network"),
    "reserved": N_("reserved range"),
    "not-global": N_("not a public address"),
}


def _peers_page(work: ConsoleWork, error: str | None = None, status_code: int = 200) -> Response:
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
        status_code=status_code,
        rows=rows,
        error=error,
        fingerprint=node.identity.fingerprint,
        public_url=node.settings.public_url,
        category_count=len(ALERT_CATEGORIES),
    )


@router.get("", include_in_schema=False)
def peers(work: AdminWork) -> Response:
    return _peers_page(work)


def _decide(posted: Posted, node_id: str, approve: bool) -> Response:
    work, t = posted.work, posted.viewer.t
    registry = work.peers()
    shown = posted.text("endpoint") or None  # what the admin saw on the page
    try:
        if approve:
            registry.approve_endpoint(node_id, shown)
        else:
            registry.reject_endpoint(node_id, shown)
    except NotFound:
        raise Missing(posted.viewer) from None
    except EndpointRefused as exc:
        work.rollback()
        message = ENDPOINT_REFUSED.get(exc.code, ENDPOINT_REFUSED[NOT_A_URL])
        params = dict(exc.params)
        params["range"] = t.gettext(RANGES.get(params.get("range", ""), params.get("range", "")))
        return _peers_page(work, t.gettext(message) % params, 422)
    except Conflict:
        work.rollback()
        return _peers_page(work, t.gettext(NOTHING_PENDING), 409)
    work.commit()
    done = "endpoint_approved" if approve else "endpoint_rejected"
    return redirect(f"/console/peers?done={done}#peer-{node_id}")


@router.post("/{node_id}/endpoint/approve", include_in_schema=False)
def approve_endpoint(posted: AdminForm, node_id: str) -> Response:
    return _decide(posted, node_id, approve=True)


@router.post("/{node_id}/endpoint/reject", include_in_schema=False)
def reject_endpoint(posted: AdminForm, node_id: str) -> Response:
    return _decide(posted, node_id, approve=False)
