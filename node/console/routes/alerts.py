"""Alerts in the console: the inbox (live, over Server-Sent Events), sent alerts with
each recipient's state, composing with a preview of whom the sharing agreements leave
out, acknowledging, updating and retracting. Everything goes through ``AlertService``,
as the API does; officers and analysts read and acknowledge, analysts write."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from protocol import HANDLING_LEVELS

from ...api.deps import NodeDep, SessionDep, wake_sender
from ...api.streams import alert_stream
from ...db.models import Alert, Peer
from ...schemas_alerts import AlertCreate, AlertEdit, AlertOut
from ...services.agreements import ALERT_CATEGORIES, SharingAgreement
from ...services.alerts import AlertService
from ...services.peers import PeerRegistry, agreement_of
from ...services.records import Conflict, InvalidInput, NotFound
from ..auth import Reader, Viewer, Writer, resolve_viewer
from ..csrf import ReaderForm, WriterForm
from ..forms import blank_to_none, field_errors, lines
from ..i18n import N_, Translator
from ..pages import Missing, page, redirect
from ..templating import render_text

router = APIRouter(prefix="/console/alerts")
SEVERITIES = ("urgent", "warning", "info")
PAGE_SIZE = 50
REFUSAL_CATEGORY = N_("the sharing agreement excludes this category")
REFUSAL_HANDLING = N_("TLP:%(level)s is above what the agreement allows (TLP:%(max)s)")


def _service(node: Any, session: Any, viewer: Viewer) -> AlertService:
    return AlertService(session, node.identity, viewer.actor, node.now())


def _alert(service: AlertService, viewer: Viewer, alert_id: int) -> Alert:
    try:
        return service.get(alert_id)
    except NotFound:
        raise Missing(viewer) from None


def refusal_text(t: Translator, agreement: SharingAgreement, category: str, handling: str
                 ) -> str | None:
    """Why an alert may not go to a peer, in words, or None: the service's own
    ``alert_refusal`` decides; this only says it in the user's language."""
    if agreement.alert_refusal(category, handling) is None:
        return None
    if category not in agreement.alert_categories:
        return t.gettext(REFUSAL_CATEGORY)
    return t.gettext(REFUSAL_HANDLING) % {"level": handling, "max": agreement.max_handling}


def recipient_preview(t: Translator, peers: list[Peer], category: str, handling: str,
                      chosen: list[str] | None) -> list[dict[str, Any]]:
    rows = []
    for peer in peers:
        if chosen is not None and peer.node_id not in chosen:
            continue
        rows.append({"peer": peer, "refusal": refusal_text(t, agreement_of(peer), category, handling)})
    return rows


# -- reading -----------------------------------------------------------------------------

@router.get("", include_in_schema=False)
def inbox(request: Request, node: NodeDep, session: SessionDep, viewer: Reader,
          direction: str = "inbound", offset: int = 0) -> Response:
    direction = "outbound" if direction == "outbound" else "inbound"
    offset = max(0, offset)
    alerts = _service(node, session, viewer).list(direction=direction, limit=PAGE_SIZE + 1,
                                                  offset=offset)
    return page(request, viewer, "alerts/list.html", alerts=alerts[:PAGE_SIZE],
                direction=direction, offset=offset, more=len(alerts) > PAGE_SIZE,
                page_size=PAGE_SIZE)


@router.get("/stream", include_in_schema=False)
async def stream(request: Request, node: NodeDep, viewer: Reader) -> Response:
    def encode(alert: AlertOut) -> str:
        return render_text(viewer.t, "alerts/_row.html", alert=alert, direction="inbound")

    def still_allowed() -> bool:
        current = resolve_viewer(request, node)
        return current is not None and current.role in ("officer", "analyst")

    return alert_stream(request, node, viewer.actor, encode=encode, still_allowed=still_allowed)


@router.get("/new", include_in_schema=False)
def compose(request: Request, node: NodeDep, session: SessionDep, viewer: Writer) -> Response:
    return _compose_page(request, node, session, viewer, values=_blank_values(), errors={})


@router.get("/recipients", include_in_schema=False)
def preview_fragment(request: Request, node: NodeDep, session: SessionDep, viewer: Writer,
                     category: str = "seizure", handling: str = "AMBER") -> Response:
    chosen = request.query_params.getlist("recipients") or None
    rows = _preview(node, session, viewer, category, handling, chosen)
    return page(request, viewer, "alerts/_recipients.html", rows=rows)


@router.get("/{alert_id}", include_in_schema=False)
def detail(request: Request, node: NodeDep, session: SessionDep, viewer: Reader,
           alert_id: int) -> Response:
    alert = _alert(_service(node, session, viewer), viewer, alert_id)
    return page(request, viewer, "alerts/detail.html", alert=alert, errors={})


# -- writing -----------------------------------------------------------------------------

@router.post("", include_in_schema=False)
def send(request: Request, node: NodeDep, session: SessionDep, posted: WriterForm) -> Response:
    viewer = posted.viewer
    values = _values_from(posted.form)
    chosen = [name for name in posted.texts("recipients") if name]
    errors: dict[str, str] = {}
    data: AlertCreate | None = None
    try:
        data = AlertCreate.model_validate({**_content(values), "recipients": chosen})
    except ValidationError as exc:
        errors = field_errors(exc, viewer.t, _alert_field)
    if not chosen:
        errors["recipients"] = viewer.t.gettext(N_("Choose at least one recipient."))
    if errors or data is None or posted.text("action") == "preview":
        return _compose_page(request, node, session, viewer, values=values, chosen=chosen,
                             errors=errors, status_code=422 if errors else 200)
    try:
        alert = _service(node, session, viewer).create(data)
    except InvalidInput as exc:
        session.rollback()
        errors = {"recipients": viewer.t.gettext(N_("Some recipients are no longer active peers."))
                  if exc.field == "recipients" else str(exc)}
        return _compose_page(request, node, session, viewer, values=values, chosen=chosen,
                             errors=errors, status_code=422)
    session.commit()
    wake_sender(request)
    return redirect(f"/console/alerts/{alert.id}?sent=1")


@router.get("/{alert_id}/edit", include_in_schema=False)
def edit(request: Request, node: NodeDep, session: SessionDep, viewer: Writer,
         alert_id: int) -> Response:
    alert = _own(_service(node, session, viewer), viewer, alert_id)
    return page(request, viewer, "alerts/edit.html", alert=alert, values=_values_of(alert),
                errors={}, **_choices())


@router.post("/{alert_id}/update", include_in_schema=False)
def update(request: Request, node: NodeDep, session: SessionDep, posted: WriterForm,
           alert_id: int) -> Response:
    viewer = posted.viewer
    service = _service(node, session, viewer)
    alert = _own(service, viewer, alert_id)
    values = _values_from(posted.form)
    try:
        data = AlertEdit.model_validate(_content(values, keep=alert.subjects))
    except ValidationError as exc:
        return page(request, viewer, "alerts/edit.html", status_code=422, alert=alert,
                    values=values, errors=field_errors(exc, viewer.t, _alert_field),
                    **_choices())
    try:
        service.update(alert_id, data)
    except Conflict:
        session.rollback()
        return redirect(f"/console/alerts/{alert_id}")
    session.commit()
    wake_sender(request)
    return redirect(f"/console/alerts/{alert_id}?updated=1")


@router.post("/{alert_id}/retract", include_in_schema=False)
def retract(request: Request, node: NodeDep, session: SessionDep, posted: WriterForm,
            alert_id: int) -> Response:
    viewer = posted.viewer
    service = _service(node, session, viewer)
    alert = _own(service, viewer, alert_id)
    reason = posted.text("reason")
    if not reason or len(reason) > 1000:
        return page(request, viewer, "alerts/detail.html", status_code=422, alert=alert,
                    errors={"reason": viewer.t.gettext(N_("Say why the alert is withdrawn."))})
    try:
        service.retract(alert_id, reason)
    except Conflict:
        session.rollback()
        return redirect(f"/console/alerts/{alert_id}")
    session.commit()
    wake_sender(request)
    return redirect(f"/console/alerts/{alert_id}?retracted=1")


@router.post("/{alert_id}/ack", include_in_schema=False)
def acknowledge(request: Request, node: NodeDep, session: SessionDep, posted: ReaderForm,
                alert_id: int) -> Response:
    viewer = posted.viewer
    service = _service(node, session, viewer)
    alert = _alert(service, viewer, alert_id)
    status = posted.text("status")
    if status not in ("read", "acted") or alert.direction != "inbound":
        return redirect(f"/console/alerts/{alert_id}")
    service.acknowledge(alert_id, status)
    session.commit()
    wake_sender(request)
    return redirect(f"/console/alerts/{alert_id}?ack={status}")


# -- helpers -----------------------------------------------------------------------------

def _own(service: AlertService, viewer: Viewer, alert_id: int) -> Alert:
    alert = _alert(service, viewer, alert_id)
    if alert.direction != "outbound" or alert.status == "retracted":
        raise Missing(viewer)
    return alert


def _choices() -> dict[str, Any]:
    return {"categories": ALERT_CATEGORIES, "severities": SEVERITIES,
            "handlings": HANDLING_LEVELS}


def _preview(node: Any, session: Any, viewer: Viewer, category: str, handling: str,
             chosen: list[str] | None) -> list[dict[str, Any]]:
    if category not in ALERT_CATEGORIES or handling not in HANDLING_LEVELS:
        return []
    peers = PeerRegistry(session, viewer.actor, node.now(),
                         own_node_id=node.identity.node_id).active()
    return recipient_preview(viewer.t, peers, category, handling, chosen)


def _compose_page(request: Request, node: Any, session: Any, viewer: Viewer, *,
                  values: dict[str, str], errors: dict[str, str],
                  chosen: list[str] | None = None, status_code: int = 200) -> Response:
    peers = PeerRegistry(session, viewer.actor, node.now(),
                         own_node_id=node.identity.node_id).active()
    chosen = [p.node_id for p in peers] if chosen is None else chosen
    preview = _preview(node, session, viewer, values["category"], values["handling"], chosen)
    return page(request, viewer, "alerts/compose.html", status_code=status_code, values=values,
                errors=errors, peers=peers, chosen=chosen, preview=preview, **_choices())


FORM_FIELDS = ("category", "severity", "title", "body", "handling", "country", "locality",
               "expires_at", "references", "subjects")


def _blank_values() -> dict[str, str]:
    return {**dict.fromkeys(FORM_FIELDS, ""), "category": "seizure", "severity": "warning",
            "handling": "AMBER"}


def _values_from(form: Any) -> dict[str, str]:
    values = _blank_values()
    for name in FORM_FIELDS:
        value = form.get(name)
        if isinstance(value, str):
            values[name] = value
    return values


def _values_of(alert: Alert) -> dict[str, str]:
    place = alert.place or {}
    return {
        "category": alert.category, "severity": alert.severity, "title": alert.title,
        "body": alert.body, "handling": alert.handling,
        "country": str(place.get("country") or ""), "locality": str(place.get("locality") or ""),
        "expires_at": alert.expires_at.strftime("%Y-%m-%dT%H:%M") if alert.expires_at else "",
        "references": "\n".join(alert.references),
        "subjects": "\n".join(" / ".join(s.get("names", [])) for s in alert.subjects),
    }


def _content(values: dict[str, str], keep: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The API body of an alert from the form. Subjects are one person a line (names
    separated by ' / '); a line unchanged from the alert keeps the subject's details."""
    known = {" / ".join(s.get("names", [])): s for s in keep or []}
    subjects = [known.get(line) or {"kind": "person", "names": [n.strip() for n in line.split("/")
                                                                if n.strip()]}
                for line in lines(values["subjects"])]
    country, locality = blank_to_none(values["country"]), blank_to_none(values["locality"])
    expires = blank_to_none(values["expires_at"])
    return {
        "category": values["category"], "severity": values["severity"],
        "title": values["title"], "body": values["body"], "handling": values["handling"],
        "references": lines(values["references"]), "subjects": subjects,
        "place": {"country": country, "locality": locality} if country or locality else None,
        "expires_at": _utc(expires) if expires else None,
    }


def _utc(text: str) -> str | datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text  # pydantic says what is wrong with it
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _alert_field(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "form"
    if loc[0] == "place":
        return "locality" if "locality" in loc else "country"
    return str(loc[0])

