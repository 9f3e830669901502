"""Routes of the two record kinds: ``/api/v1/licensees`` and ``/api/v1/subjects``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ...schemas.records import (
    LicenseeCreate,
    LicenseeFilters,
    LicenseeOut,
    LicenseeUpdate,
    StatusChange,
    SubjectCreate,
    SubjectFilters,
    SubjectOut,
    SubjectUpdate,
)
from ...services.licensees import LicenseeRegistry
from ...services.subjects import SubjectRegistry
from ...web.params import ExpectedVersion
from ..deps import AsWriter
from .records import make_record_router

licensees = make_record_router(
    prefix="/licensees",
    tag="licensees",
    registry=LicenseeRegistry,
    create_model=LicenseeCreate,
    update_model=LicenseeUpdate,
    out_model=LicenseeOut,
    filters=LicenseeFilters,
)
subjects = make_record_router(
    prefix="/subjects",
    tag="subjects",
    registry=SubjectRegistry,
    create_model=SubjectCreate,
    update_model=SubjectUpdate,
    out_model=SubjectOut,
    filters=SubjectFilters,
)


@licensees.post("/{ref}/status", response_model=LicenseeOut, summary="Change a licence's status")
def change_status(
    work: AsWriter, ref: str, body: StatusChange, version: ExpectedVersion = None
) -> Any:
    record = work.licensees().set_status(ref, body, version)
    work.commit()
    return LicenseeOut.model_validate(record, from_attributes=True)


router = APIRouter()
router.include_router(licensees)
router.include_router(subjects)
