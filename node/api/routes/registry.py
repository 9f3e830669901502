"""Routes of the two record kinds: ``/api/v1/licensees`` and ``/api/v1/subjects``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from ...schemas import (
    Handling,
    LicenceStatus,
    LicenceType,
    LicenseeCreate,
    LicenseeOut,
    LicenseeUpdate,
    PartyKind,
    ReasonCategory,
    RiskLevel,
    StatusChange,
    SubjectCreate,
    SubjectOut,
    SubjectUpdate,
)
from ...services.licensees import LicenseeRegistry
from ...services.subjects import SubjectRegistry
from ..deps import NodeDep, SessionDep, Writer
from .records import make_record_router


class LicenseeFilters(BaseModel):
    status: LicenceStatus | None = None
    licence_type: LicenceType | None = None
    region: str | None = None
    handling: Handling | None = None


class SubjectFilters(BaseModel):
    kind: PartyKind | None = None
    reason_category: ReasonCategory | None = None
    risk_level: RiskLevel | None = None
    nationality: str | None = None
    handling: Handling | None = None


licensees = make_record_router(
    prefix="/licensees", tag="licensees", registry=LicenseeRegistry,
    create_model=LicenseeCreate, update_model=LicenseeUpdate, out_model=LicenseeOut,
    filters=LicenseeFilters,
)
subjects = make_record_router(
    prefix="/subjects", tag="subjects", registry=SubjectRegistry,
    create_model=SubjectCreate, update_model=SubjectUpdate, out_model=SubjectOut,
    filters=SubjectFilters,
)


@licensees.post("/{ref}/status", response_model=LicenseeOut, summary="Change a licence's status")
def change_status(
    node: NodeDep, session: SessionDep, actor: Writer, ref: str, body: StatusChange,
    version: int | None = None,
) -> Any:
    record = LicenseeRegistry(session, actor, node.now()).set_status(ref, body, version)
    session.commit()
    return LicenseeOut.model_validate(record, from_attributes=True)


router = APIRouter()
router.include_router(licensees)
router.include_router(subjects)
