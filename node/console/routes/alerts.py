"""Alerts in the console: the inbox (live, over Server-Sent Events), sent alerts with
each recipient's state, composing with a preview of whom the sharing agreements leave
out, acknowledging, updating and retracting. Everything goes through ``AlertService``,
as the API does; officers and analysts read and acknowledge, analysts write."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError

from protocol import ALERT_CATEGORIES, HANDLING_LEVELS, SEVERITIES

from ...db.models import Alert, Peer
from ...schemas.agreements import SharingAgreement
from ...schemas.alerts import Acknowledgement, AlertCreate, AlertEdit, AlertOut
from ...services.alerts import AlertService
from ...services.errors import Conflict, InvalidInput, NotFound
from ...services.peers import agreement_of
from ...web.params import Offset, RowId
from ...web.streams import Encoder, StreamPass, alert_stream
from ..auth import READERS, SESSION_COOKIE, ConsoleWork, ReaderWork, Viewer, WriterWork
from ..csrf import ReaderForm, WriterForm
from ..forms import blank_to_none, field_errors, lines
from ..i18n import N_, Translator
from ..pages import Missing, page, redirect
from ..templating import render_text

router = APIRouter(prefix="/console/alerts")
PAGE_SIZE = 50
REFUSAL_CATEGORY = N_("the sharing agreement excludes this category")
REFUSAL_HANDLING = N_("TLP:%(level)s is above what the agreement allows (TLP:%(max)s)")


def _alert(service: AlertService, viewer: Viewer, alert_id: RowId) -> Alert:
    try:
        return service.get(alert_id)
    except NotFound:
        raise Missing(viewer) from None


def refusal_text(
    t: Translator, agreement: SharingAgreement, category: str, handling: str
) -> str | None:
    """Why an alert may not go to a peer, in words, or None: the service's own
    ``alert_refusal`` decides; this only says it in the user's language."""
    if agreement.alert_refusal(category, handling) is None:
        return None
    if category not in agreement.alert_categories:
        return t.gettext(REFUSAL_CATEGORY)
    return t.gettext(REFUSAL_HANDLING) % {"level": handling, "max": agreement.max_handling}


def recipient_preview(
    t: Translator, peers: list[Peer], category: str, handling: str, chosen: list[str] | None
) -> list[dict[str, Any]]:
    rows = []
    for peer in peers:
        if chosen is not None and peer.node_id not in chosen:
            continue
        rows.append(
            {"peer": peer, "refusal": refusal_text(t, agreement_of(peer), category, handling)}
        )
    return rows


# -- reading -----------------------------------------------------------------------------


@router.get("", include_in_schema=False)
def inbox(work: ReaderWork, direction: str = "inbound", offset: Offset = 0) -> Response:
    direction = "outbound" if direction == "outbound" else "inbound"
    offset = max(0, offset)
    alerts = work.alerts().recent(direction=direction, limit=PAGE_SIZE + 1, offset=offset)
    return page(
        work.request,
        work.viewer,
        "alerts/list.html",
        alerts=alerts[:PAGE_SIZE],
        direction=direction,
        offset=offset,
        more=len(alerts) > PAGE_SIZE,
        page_size=PAGE_SIZE,
    )


@router.get("/stream", include_in_schema=False)
async def stream(work: ReaderWork) -> Response:
    request, viewer = work.request, work.viewer

    def encode(alert: AlertOut) -> str:
        return render_text(viewer.t, "alerts/_row.html", alert=alert, direction="inbound")

    # The row depends only on the alert and the language: one rendering per language.
    encoder = Encoder(key=("console-row", viewer.t.language), encode=encode)
    admission = StreamPass.of_session(request.cookies.get(SESSION_COOKIE, ""), READERS.permission)
    return alert_stream(request, viewer.actor, admission=admission, encoder=encoder)


@router.get("/new", include_in_schema=False)
def compose(work: WriterWork) -> Response:
    return _compose_page(work, values=_blank_values(), errors={})


@router.get("/recipients", include_in_schema=False)
def preview_fragment(
    work: WriterWork, category: str = "seizure", handling: str = "AMBER"
) -> Response:
    chosen = work.request.query_params.getlist("recipients") or None
    rows = _preview(work, category, handling, chosen)
    return page(work.request, work.viewer, "alerts/_recipients.html", rows=rows)


@router.get("/{alert_id}", include_in_schema=False)
def detail(work: ReaderWork, alert_id: RowId) -> Response:
    alert = _alert(work.alerts(), work.viewer, alert_id)
    return page(work.request, work.viewer, "alerts/detail.html", alert=alert, errors={})


# -- writing -----------------------------------------------------------------------------


@router.post("", include_in_schema=False)
def send(posted: WriterForm) -> Response:
    work, viewer = posted.work, posted.viewer
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
        return _compose_page(
            work, values=values, chosen=chosen, errors=errors, status_code=422 if errors else 200
        )
    try:
        alert = work.alerts().create(data)
    except InvalidInput as exc:
        work.rollback()
        errors = {
            "recipients": viewer.t.gettext(N_("Some recipients are no longer active peers."))
            if exc.field == "recipients"
            else str(exc)
        }
        return _compose_page(work, values=values, chosen=chosen, errors=errors, status_code=422)
    work.commit()
    return redirect(f"/console/alerts/{alert.id}?sent=1")


@router.get("/{alert_id}/edit", include_in_schema=False)
def edit(work: WriterWork, alert_id: RowId) -> Response:
    alert = _own(work.alerts(), work.viewer, alert_id)
    return page(
        work.request,
        work.viewer,
        "alerts/edit.html",
        alert=alert,
        values=_values_of(alert),
        errors={},
        **_choices(),
    )


@router.post("/{alert_id}/update", include_in_schema=False)
def update(posted: WriterForm, alert_id: RowId) -> Response:
    work, viewer = posted.work, posted.viewer
    service = work.alerts()
    alert = _own(service, viewer, alert_id)
    values = _values_from(posted.form)
    try:
        data = AlertEdit.model_validate(_content(values, keep=alert.subjects))
    except ValidationError as exc:
        return page(
            work.request,
            viewer,
            "alerts/edit.html",
            status_code=422,
            alert=alert,
            values=values,
            errors=field_errors(exc, viewer.t, _alert_field),
            **_choices(),
        )
    try:
        service.update(alert_id, data)
    except Conflict:
        work.rollback()
        return redirect(f"/console/alerts/{alert_id}")
    work.commit()
    return redirect(f"/console/alerts/{alert_id}?updated=1")


@router.post("/{alert_id}/retract", include_in_schema=False)
def retract(posted: WriterForm, alert_id: RowId) -> Response:
    work, viewer = posted.work, posted.viewer
    service = work.alerts()
    alert = _own(service, viewer, alert_id)
    reason = posted.text("reason")
    if not reason or len(reason) > 1000:
        return page(
            work.request,
            viewer,
            "alerts/detail.html",
            status_code=422,
            alert=alert,
            errors={"reason": viewer.t.gettext(N_("Say why the alert is withdrawn."))},
        )
    try:
        service.retract(alert_id, reason)
    except Conflict:
        work.rollback()
        return redirect(f"/console/alerts/{alert_id}")
    work.commit()
    return redirect(f"/console/alerts/{alert_id}?retracted=1")


@router.post("/{alert_id}/ack", include_in_schema=False)
def acknowledge(posted: ReaderForm, alert_id: RowId) -> Response:
    work, viewer = posted.work, posted.viewer
    service = work.alerts()
    alert = _alert(service, viewer, alert_id)
    try:
        ack = Acknowledgement.model_validate({"status": posted.text("status")})
    except ValidationError:
        return redirect(f"/console/alerts/{alert_id}")
    if alert.direction != "inbound":
        return redirect(f"/console/alerts/{alert_id}")
    service.acknowledge(alert_id, ack.status)
    work.commit()
    return redirect(f"/console/alerts/{alert_id}?ack={ack.status}")


# -- helpers -----------------------------------------------------------------------------


def _own(service: AlertService, viewer: Viewer, alert_id: RowId) -> Alert:
    alert = _alert(service, viewer, alert_id)
    if alert.direction != "outbound" or alert.status == "retracted":
        raise Missing(viewer)
    return alert


def _choices() -> dict[str, Any]:
    return {"categories": ALERT_CATEGORIES, "severities": SEVERITIES, "handlings": HANDLING_LEVELS}


def _preview(
    work: ConsoleWork, category: str, handling: str, chosen: list[str] | None
) -> list[dict[str, Any]]:
    if category not in ALERT_CATEGORIES or handling not in HANDLING_LEVELS:
        return []
    return recipient_preview(work.viewer.t, work.peers().active(), category, handling, chosen)


def _compose_page(
    work: ConsoleWork,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    chosen: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    peers = work.peers().active()
    chosen = [p.node_id for p in peers] if chosen is None else chosen
    preview = _preview(work, values["category"], values["handling"], chosen)
    return page(
        work.request,
        work.viewer,
        "alerts/compose.html",
        status_code=status_code,
        values=values,
        errors=errors,
        peers=peers,
        chosen=chosen,
        preview=preview,
        **_choices(),
    )


FORM_FIELDS = (
    "category",
    "severity",
    "title",
    "body",
    "handling",
    "country",
    "locality",
    "expires_at",
    "references",
    "subjects",
)


def _blank_values() -> dict[str, str]:
    return {
        **dict.fromkeys(FORM_FIELDS, ""),
        "category": "seizure",
        "severity": "warning",
        "handling": "AMBER",
    }


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
        "category": alert.category,
        "severity": alert.severity,
        "title": alert.title,
        "body": alert.body,
        "handling": alert.handling,
        "country": str(place.get("country") or ""),
        "locality": str(place.get("locality") or ""),
        "expires_at": alert.expires_at.strftime("%Y-%m-%dT%H:%M") if alert.expires_at else "",
        "references": "\n".join(alert.references),
        "subjects": "\n".join(" / ".join(s.get("names", [])) for s in alert.subjects),
    }


def _content(values: dict[str, str], keep: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The API body of an alert from the form. Subjects are one person a line (names
    separated by ' / '); a line unchanged from the alert keeps the subject's details."""
    known = {" / ".join(s.get("names", [])): s for s in keep or []}
    subjects = [
        known.get(line)
        or {"kind": "person", "names": [n.strip() for n in line.split("/") if n.strip()]}
        for line in lines(values["subjects"])
    ]
    country, locality = blank_to_none(values["country"]), blank_to_none(values["locality"])
    expires = blank_to_none(values["expires_at"])
    return {
        "category": values["category"],
        "severity": values["severity"],
        "title": values["title"],
        "body": values["body"],
        "handling": values["handling"],
        "references": lines(values["references"]),
        "subjects": subjects,
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
