"""KYC checks and disclosures in the console, over ``KycService`` and
``DisclosureService`` as the API uses them: a check form (person or organisation,
local or across peers), results grouped local / per peer with each hit's score in words
and as a bar and its explanation, peers that did not answer; a disclosure request on a
peer's subject hit; the disclosures page where analysts grant (choosing fields) or deny.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError

from ...schemas.kyc import DISCLOSABLE_FIELDS, CheckCreate, DisclosureCreate, DisclosureDecision
from ...services.csv_format import read_documents
from ...services.errors import Conflict, InvalidInput, NotFound
from ...web import kyc_checks
from ...web.params import RowId
from ...web.request import outbox_sender
from ..auth import ConsoleWork, ReaderWork
from ..csrf import ReaderForm, WriterForm
from ..forms import blank_to_none, field_errors, lines
from ..i18n import N_
from ..pages import Missing, page, redirect

router = APIRouter(prefix="/console")
FORM_FIELDS = (
    "kind",
    "names",
    "aliases",
    "date_of_birth",
    "nationality",
    "documents",
    "licence_numbers",
    "purpose",
    "scope",
)
BAD_DOCUMENT = N_(
    "Write each document as type:number or type:number:country, for example passport:OB0123456:CD."
)


def _values(form: Any = None) -> dict[str, str]:
    values = {**dict.fromkeys(FORM_FIELDS, ""), "kind": "person", "scope": "federation"}
    for name in FORM_FIELDS:
        if form is not None and isinstance(form.get(name), str):
            values[name] = form.get(name)
    return values


def _check_page(
    work: ConsoleWork, values: dict[str, str], errors: dict[str, str], status_code: int = 200
) -> Response:
    checks = work.kyc().recent(limit=20, offset=0)
    return page(
        work.request,
        work.viewer,
        "kyc/index.html",
        status_code=status_code,
        values=values,
        errors=errors,
        checks=checks,
    )


@router.get("/kyc", include_in_schema=False)
def kyc_page(work: ReaderWork) -> Response:
    return _check_page(work, _values(), {})


@router.post("/kyc", include_in_schema=False)
async def run_check(posted: ReaderForm) -> Response:
    work, viewer, t = posted.work, posted.viewer, posted.viewer.t
    values = _values(posted.form)
    errors: dict[str, str] = {}
    try:
        documents = read_documents("|".join(lines(values["documents"])))
    except ValueError:
        documents, errors["documents"] = [], t.gettext(BAD_DOCUMENT)
    party = {
        "kind": values["kind"],
        "names": lines(values["names"]),
        "aliases": lines(values["aliases"]),
        "date_of_birth": blank_to_none(values["date_of_birth"]),
        "nationality": blank_to_none(values["nationality"]),
        "documents": documents,
        "licence_numbers": lines(values["licence_numbers"]),
    }
    body = None
    try:
        body = CheckCreate.model_validate(
            {"party": party, "purpose": values["purpose"], "scope": values["scope"]}
        )
    except ValidationError as exc:
        errors = {
            **field_errors(
                exc, t, lambda loc: str(loc[1] if loc[0] == "party" and len(loc) > 1 else loc[0])
            ),
            **errors,
        }
    if errors or body is None:
        return await run_in_threadpool(_check_page, work, values, errors, 422)
    request = work.request
    check = await kyc_checks.run_check(
        work.node,
        viewer.actor,
        body,
        sender=outbox_sender(request),
        answers=request.app.state.answer_feed,
    )
    return redirect(f"/console/kyc/{check.id}")


@router.get("/kyc/{check_id}", include_in_schema=False)
def check_page(work: ReaderWork, check_id: str) -> Response:
    service, viewer = work.kyc(), work.viewer
    try:
        check = service.read(check_id)
    except NotFound:
        raise Missing(viewer) from None
    asked = {(d.peer, d.reference): d for d in work.disclosures().for_check(check.id)}
    work.commit()  # the read is audited
    return page(work.request, viewer, "kyc/check.html", check=check, asked=asked, errors={})


@router.post("/disclosures", include_in_schema=False)
def request_disclosure(posted: ReaderForm) -> Response:
    work = posted.work
    check_id = posted.text("check_id")
    try:
        body = DisclosureCreate.model_validate(
            {
                "check_id": check_id,
                "peer": posted.text("peer"),
                "reference": posted.text("reference"),
                "justification": posted.text("justification"),
            }
        )
        disclosure, sent = work.disclosures().request(body)
    except (ValidationError, InvalidInput, Conflict, NotFound):
        work.rollback()
        return redirect(f"/console/kyc/{check_id}?disclosure=invalid")
    work.commit(deliver=[sent.message_id])
    return redirect(f"/console/disclosures/{disclosure.id}?requested=1")


@router.get("/disclosures", include_in_schema=False)
def disclosures(work: ReaderWork, direction: str = "inbound") -> Response:
    direction = "outbound" if direction == "outbound" else "inbound"
    rows = work.disclosures().recent(direction=direction, status=None, limit=200, offset=0)
    work.commit()  # the list is audited
    return page(work.request, work.viewer, "kyc/disclosures.html", rows=rows, direction=direction)


@router.get("/disclosures/{disclosure_id}", include_in_schema=False)
def disclosure(work: ReaderWork, disclosure_id: RowId) -> Response:
    try:
        item = work.disclosures().get(disclosure_id)
    except NotFound:
        raise Missing(work.viewer) from None
    work.commit()  # the read is audited
    return page(
        work.request,
        work.viewer,
        "kyc/disclosure.html",
        item=item,
        fields=DISCLOSABLE_FIELDS,
        errors={},
    )


@router.post("/disclosures/{disclosure_id}/decision", include_in_schema=False)
def decide(posted: WriterForm, disclosure_id: RowId) -> Response:
    work, viewer = posted.work, posted.viewer
    service = work.disclosures()
    decision = posted.text("decision")
    try:
        body = DisclosureDecision.model_validate(
            {
                "decision": decision,
                "fields": posted.texts("fields") if decision == "grant" else [],
                "reason": (posted.text("reason") or None) if decision == "deny" else None,
            }
        )
        _, sent = service.decide(disclosure_id, body)
    except NotFound:
        raise Missing(viewer) from None
    except (ValidationError, InvalidInput, Conflict):
        work.rollback()
        item = service.get(disclosure_id)
        work.commit()  # the read is audited
        message = (
            N_("Choose at least one field to release.")
            if decision == "grant"
            else N_("Say why the request is denied.")
        )
        return page(
            work.request,
            viewer,
            "kyc/disclosure.html",
            status_code=422,
            item=item,
            fields=DISCLOSABLE_FIELDS,
            errors={decision: viewer.t.gettext(message)},
        )
    work.commit(deliver=[sent.message_id])
    return redirect(f"/console/disclosures/{disclosure_id}?decided=1")
