"""Licensees and subjects in the console: lists with search and filters, details with
history, create and edit forms validated by the API's own models, licence status.

Officers and analysts read; analysts write. The registries (``LicenseeRegistry``,
``SubjectRegistry``) do the work, so history, audit and the match index stay as the
API keeps them; reading a subject's details is audited there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from protocol import (
    HANDLING_LEVELS,
    LICENCE_STATUSES,
    LICENCE_TYPES,
    PARTY_KINDS,
    REASON_CATEGORIES,
    RISK_LEVELS,
)

from ...schemas.records import (
    LicenseeCreate,
    LicenseeFilters,
    LicenseeUpdate,
    StatusChange,
    SubjectCreate,
    SubjectFilters,
    SubjectUpdate,
)
from ...services.csv_format import read_documents
from ...services.errors import Conflict, InvalidInput, NotFound
from ...services.licensees import LicenseeRegistry
from ...services.records import RecordRegistry
from ...services.subjects import SUBJECT_FIELDS, SubjectRegistry
from ...web.params import MAX_OFFSET
from ..auth import ConsoleWork, ReaderWork, Viewer, Writer, WriterWork
from ..csrf import Posted, WriterForm
from ..forms import blank_to_none, field_errors, lines, whole_number
from ..i18n import N_
from ..pages import Missing, page, redirect

router = APIRouter(prefix="/console")
PAGE_SIZE = 50

DUPLICATE_LICENCE = N_("This licence number is already registered.")
STALE_VERSION = N_(
    "Someone changed this record while you were editing it. Reload it and make your change again."
)
UNKNOWN_LICENCES = N_("Unknown licence numbers: %(numbers)s")
ABOVE_CLEARANCE = N_("This level is above your clearance: you could not read the record.")
BAD_DOCUMENT = N_(
    "Write each document as type:number or type:number:country, for example passport:OB0123456:CD."
)


@dataclass(frozen=True)
class Kind:
    """What differs between the two record kinds in the console."""

    path: str  # "licensees"
    registry: type[RecordRegistry[Any]]
    filters: type[BaseModel]
    choices: dict[str, tuple[str, ...]]  # filter/select name -> allowed codes
    label_groups: dict[str, str]  # field -> labels group


LICENSEES = Kind(
    "licensees",
    LicenseeRegistry,
    LicenseeFilters,
    {
        "status": LICENCE_STATUSES,
        "licence_type": LICENCE_TYPES,
        "handling": HANDLING_LEVELS,
    },
    {"status": "licence_status", "licence_type": "licence_type"},
)
SUBJECTS = Kind(
    "subjects",
    SubjectRegistry,
    SubjectFilters,
    {
        "kind": PARTY_KINDS,
        "reason_category": REASON_CATEGORIES,
        "risk_level": RISK_LEVELS,
        "handling": HANDLING_LEVELS,
    },
    {"kind": "party_kind", "reason_category": "reason_category", "risk_level": "risk_level"},
)
KINDS = {k.path: k for k in (LICENSEES, SUBJECTS)}


def _get(registry: RecordRegistry[Any], viewer: Viewer, ref: str, *, read: bool = False) -> Any:
    try:
        return registry.read(ref) if read else registry.get(ref)
    except NotFound:
        raise Missing(viewer) from None


# -- form values <-> API bodies ----------------------------------------------------------

LICENSEE_TEXT = (
    "licence_number",
    "licence_type",
    "legal_name",
    "trade_names",
    "address",
    "region",
    "issued_on",
    "expires_on",
    "status",
    "handling",
    "directors",
    "beneficial_owners",
    "version",
)
SUBJECT_TEXT = (*SUBJECT_FIELDS, "version")


def _form_values(posted: Posted, names: tuple[str, ...]) -> dict[str, str]:
    return {name: str(posted.form.get(name) or "") for name in names}


def licensee_values(record: Any | None) -> dict[str, str]:
    if record is None:
        return {
            **dict.fromkeys(LICENSEE_TEXT, ""),
            "licence_type": "buying_house",
            "status": "active",
            "handling": "GREEN",
        }
    persons = record.persons or []
    return {
        "licence_number": record.licence_number,
        "licence_type": record.licence_type,
        "legal_name": record.legal_name,
        "trade_names": "\n".join(record.trade_names),
        "address": record.address or "",
        "region": record.region or "",
        "issued_on": str(record.issued_on or ""),
        "expires_on": str(record.expires_on or ""),
        "status": record.status,
        "handling": record.handling,
        "directors": "\n".join(p["name"] for p in persons if p.get("role") == "director"),
        "beneficial_owners": "\n".join(
            p["name"] for p in persons if p.get("role") == "beneficial_owner"
        ),
        "version": str(record.version),
    }


def licensee_body(values: dict[str, str], record: Any | None) -> dict[str, Any]:
    """The API body; persons keep their details (birth date, documents) when their name
    is unchanged, and persons of other roles are kept as they are."""
    existing = {(p.get("role"), p.get("name")): p for p in (record.persons if record else [])}
    persons = [
        existing.get((role, name)) or {"role": role, "name": name}
        for field, role in (("directors", "director"), ("beneficial_owners", "beneficial_owner"))
        for name in lines(values[field])
    ]
    persons += [
        p
        for p in (record.persons if record else [])
        if p.get("role") not in ("director", "beneficial_owner")
    ]
    body: dict[str, Any] = {
        "licence_type": values["licence_type"],
        "legal_name": values["legal_name"],
        "trade_names": lines(values["trade_names"]),
        "persons": persons,
        "address": blank_to_none(values["address"]),
        "region": blank_to_none(values["region"]),
        "issued_on": blank_to_none(values["issued_on"]),
        "expires_on": blank_to_none(values["expires_on"]),
        "handling": values["handling"],
    }
    if record is None:
        body.update(licence_number=values["licence_number"], status=values["status"])
    else:
        body["version"] = whole_number(values["version"])
    return body


def subject_values(record: Any | None) -> dict[str, str]:
    if record is None:
        return {
            **dict.fromkeys(SUBJECT_TEXT, ""),
            "kind": "person",
            "reason_category": "smuggling",
            "risk_level": "medium",
            "handling": "AMBER",
        }
    return {
        "kind": record.kind,
        "names": "\n".join(record.names),
        "aliases": "\n".join(record.aliases),
        "date_of_birth": record.date_of_birth or "",
        "nationality": record.nationality or "",
        "documents": "\n".join(
            ":".join(filter(None, (d.get("type"), d.get("number"), d.get("country"))))
            for d in record.documents
        ),
        "linked_licence_numbers": "\n".join(record.linked_licence_numbers),
        "reason_category": record.reason_category,
        "risk_level": record.risk_level,
        "narrative": record.narrative or "",
        "source_agency": record.source_agency or "",
        "handling": record.handling,
        "version": str(record.version),
    }


def subject_body(
    values: dict[str, str], record: Any | None
) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    try:
        documents = read_documents("|".join(lines(values["documents"])))
    except ValueError:
        documents, errors["documents"] = [], BAD_DOCUMENT
    body: dict[str, Any] = {
        "kind": values["kind"],
        "names": lines(values["names"]),
        "aliases": lines(values["aliases"]),
        "date_of_birth": blank_to_none(values["date_of_birth"]),
        "nationality": blank_to_none(values["nationality"]),
        "documents": documents,
        "linked_licence_numbers": lines(values["linked_licence_numbers"]),
        "reason_category": values["reason_category"],
        "risk_level": values["risk_level"],
        "narrative": blank_to_none(values["narrative"]),
        "source_agency": blank_to_none(values["source_agency"]),
        "handling": values["handling"],
    }
    if record is not None:
        body["version"] = whole_number(values["version"])
    return body, errors


def _licensee_field(loc: tuple[Any, ...]) -> str:
    if loc and loc[0] == "persons":
        return "directors"
    return str(loc[0]) if loc else "form"


def _subject_field(loc: tuple[Any, ...]) -> str:
    return str(loc[0]) if loc else "form"


# -- pages -------------------------------------------------------------------------------


def _list(kind: Kind, work: ConsoleWork) -> Response:
    params = work.request.query_params
    wanted = {name: params.get(name) or None for name in kind.filters.model_fields}
    try:
        filters = kind.filters.model_validate(wanted).model_dump()
    except ValidationError:
        filters = dict.fromkeys(kind.filters.model_fields)
    q = (params.get("q") or "").strip()[:200]
    try:
        offset = min(MAX_OFFSET, max(0, int(params.get("offset") or 0)))
    except ValueError:
        offset = 0
    items, total = work.registry(kind.registry).search(
        q=q or None, limit=PAGE_SIZE, offset=offset, **filters
    )
    work.commit()  # lists of subjects are audited
    query = "&".join(f"{k}={v}" for k, v in {"q": q, **filters}.items() if v)
    return page(
        work.request,
        work.viewer,
        f"records/{kind.path}.html",
        items=items,
        total=total,
        offset=offset,
        limit=PAGE_SIZE,
        q=q,
        filters=filters,
        kind=kind,
        base=f"/console/{kind.path}?{query}{'&' if query else ''}",
    )


@router.get("/licensees", include_in_schema=False)
def licensees(work: ReaderWork) -> Response:
    return _list(LICENSEES, work)


@router.get("/subjects", include_in_schema=False)
def subjects(work: ReaderWork) -> Response:
    return _list(SUBJECTS, work)


@router.get("/licensees/new", include_in_schema=False)
def new_licensee(request: Request, viewer: Writer) -> Response:
    return _form(request, viewer, LICENSEES, None, licensee_values(None), {})


@router.get("/subjects/new", include_in_schema=False)
def new_subject(request: Request, viewer: Writer) -> Response:
    return _form(request, viewer, SUBJECTS, None, subject_values(None), {})


@router.get("/licensees/{ref}", include_in_schema=False)
def licensee(work: ReaderWork, ref: str) -> Response:
    registry = work.licensees()
    record = _get(registry, work.viewer, ref, read=True)
    work.commit()
    return page(
        work.request,
        work.viewer,
        "records/licensee.html",
        record=record,
        history=registry.history(ref),
        statuses=LICENSEES.choices["status"],
        errors={},
    )


@router.get("/subjects/{ref}", include_in_schema=False)
def subject(work: ReaderWork, ref: str) -> Response:
    registry = work.subjects()
    record = _get(registry, work.viewer, ref, read=True)
    history = registry.history(ref, audit=False)  # the read's entry covers the page
    work.commit()  # the read is audited
    return page(
        work.request,
        work.viewer,
        "records/subject.html",
        record=record,
        history=history,
    )


@router.get("/licensees/{ref}/edit", include_in_schema=False)
def edit_licensee(work: WriterWork, ref: str) -> Response:
    record = _get(work.licensees(), work.viewer, ref)
    return _form(work.request, work.viewer, LICENSEES, record, licensee_values(record), {})


@router.get("/subjects/{ref}/edit", include_in_schema=False)
def edit_subject(work: WriterWork, ref: str) -> Response:
    record = _get(work.subjects(), work.viewer, ref)
    return _form(work.request, work.viewer, SUBJECTS, record, subject_values(record), {})


def _form(
    request: Request,
    viewer: Viewer,
    kind: Kind,
    record: Any | None,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    return page(
        request,
        viewer,
        f"records/{kind.path}_form.html",
        status_code=status_code,
        record=record,
        values=values,
        errors=errors,
        kind=kind,
    )


# -- writing -----------------------------------------------------------------------------


def _save(kind: Kind, posted: Posted, ref: str | None) -> Response:
    work, viewer, t = posted.work, posted.viewer, posted.viewer.t
    registry = work.registry(kind.registry)
    record = _get(registry, viewer, ref) if ref else None
    names = LICENSEE_TEXT if kind is LICENSEES else SUBJECT_TEXT
    values = _form_values(posted, names)
    errors: dict[str, str] = {}
    if kind is LICENSEES:
        body, where = licensee_body(values, record), _licensee_field
        model: type[BaseModel] = LicenseeCreate if record is None else LicenseeUpdate
    else:
        body, errors = subject_body(values, record)
        errors = {k: t.gettext(v) for k, v in errors.items()}
        where = _subject_field
        model = SubjectCreate if record is None else SubjectUpdate
    data = None
    try:
        data = model.model_validate(body)
    except ValidationError as exc:
        errors = {**field_errors(exc, t, where), **errors}
    if data is not None and not errors:
        try:
            saved = registry.create(data) if record is None else registry.update(ref or "", data)
        except Conflict:
            work.rollback()
            errors = (
                {"licence_number": t.gettext(DUPLICATE_LICENCE)}
                if record is None
                else {"form": t.gettext(STALE_VERSION)}
            )
        except InvalidInput as exc:
            work.rollback()
            numbers = exc.message.partition(":")[2].strip()
            errors = {
                exc.field: t.gettext(UNKNOWN_LICENCES) % {"numbers": numbers}
                if exc.field == "linked_licence_numbers"
                else t.gettext(ABOVE_CLEARANCE)
                if exc.field == "handling"
                else t.gettext(N_("This value is not valid."))
            }
        else:
            work.commit()
            return redirect(f"/console/{kind.path}/{saved.ref}?saved=1")
    return _form(work.request, viewer, kind, record, values, errors, status_code=422)


@router.post("/licensees", include_in_schema=False)
def create_licensee(posted: WriterForm) -> Response:
    return _save(LICENSEES, posted, None)


@router.post("/subjects", include_in_schema=False)
def create_subject(posted: WriterForm) -> Response:
    return _save(SUBJECTS, posted, None)


@router.post("/licensees/{ref}", include_in_schema=False)
def update_licensee(posted: WriterForm, ref: str) -> Response:
    return _save(LICENSEES, posted, ref)


@router.post("/subjects/{ref}", include_in_schema=False)
def update_subject(posted: WriterForm, ref: str) -> Response:
    return _save(SUBJECTS, posted, ref)


@router.post("/licensees/{ref}/status", include_in_schema=False)
def change_status(posted: WriterForm, ref: str) -> Response:
    work, viewer = posted.work, posted.viewer
    registry = work.licensees()
    record = _get(registry, viewer, ref)
    error = None
    try:
        change = StatusChange.model_validate(
            {"status": posted.text("status"), "reason": posted.text("reason") or None}
        )
        version = int(posted.text("version") or record.version)
        registry.set_status(ref, change, version)
    except (ValidationError, ValueError):
        error = N_("Choose one of the options.")
    except Conflict:
        error = STALE_VERSION
    if error is not None:
        work.rollback()
        record = _get(registry, viewer, ref)
        return page(
            work.request,
            viewer,
            "records/licensee.html",
            status_code=422,
            record=record,
            history=registry.history(ref),
            statuses=LICENSEES.choices["status"],
            errors={"status": viewer.t.gettext(error)},
        )
    work.commit()
    return redirect(f"/console/licensees/{ref}?saved=1")
