"""Subjects of interest: persons and organisations flagged by an agency."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from ..db.models import Licensee, RecordChange, Subject
from ..schemas.records import SubjectCreate, SubjectUpdate
from .clearance import audit_subjects_returned
from .errors import InvalidInput
from .records import RecordRegistry

SUBJECT_FIELDS = (
    "kind",
    "names",
    "aliases",
    "date_of_birth",
    "nationality",
    "documents",
    "linked_licence_numbers",
    "reason_category",
    "risk_level",
    "narrative",
    "source_agency",
    "handling",
)


class SubjectRegistry(RecordRegistry[Subject]):
    model = Subject
    kind = "subject"
    fields = SUBJECT_FIELDS
    filters = ("kind", "reason_category", "risk_level", "nationality", "handling")

    def search_terms(self, record: Subject) -> list[str]:
        return [
            *record.names,
            *record.aliases,
            *(d["number"] for d in record.documents),
            *record.linked_licence_numbers,
        ]

    def create(self, data: SubjectCreate) -> Subject:
        self.check_licences(data.linked_licence_numbers)
        return self.new_record(data.model_dump())

    def update(self, ref: str, data: SubjectUpdate) -> Subject:
        values = data.model_dump(exclude_unset=True)
        expected = values.pop("version", None)
        if values.get("linked_licence_numbers"):
            self.check_licences(values["linked_licence_numbers"])
        return self.apply_changes(self.get(ref), values, expected)

    def read(self, ref: str) -> Subject:
        """Return a subject's details and audit that this actor saw them."""
        record = self.get(ref)
        self.audit.record(
            str(self.actor), "subject.read", now=self.now, target_kind="subject", target_id=ref
        )
        return record

    def search(
        self, *, q: str | None = None, limit: int = 50, offset: int = 0, **filters: Any
    ) -> tuple[list[Subject], int]:
        """A page of subjects within the actor's clearance; audited (``subject.list``)
        with the references returned."""
        items, total = super().search(q=q, limit=limit, offset=offset, **filters)
        audit_subjects_returned(
            self.session,
            self.actor,
            "subject.list",
            (s.ref for s in items),
            now=self.now,
            total=total,
            offset=offset,
        )
        return items, total

    def history(self, ref: str, *, audit: bool = True) -> list[RecordChange]:
        """A subject's versions; audited (``subject.history``) unless the caller has
        just audited reading the same subject (a page showing both)."""
        changes = super().history(ref)
        if audit:
            audit_subjects_returned(
                self.session, self.actor, "subject.history", [ref], now=self.now
            )
        return changes

    def check_licences(self, numbers: Iterable[str]) -> None:
        wanted = set(numbers)
        if not wanted:
            return
        found = set(
            self.session.execute(
                select(Licensee.licence_number).where(
                    Licensee.licence_number.in_(wanted), Licensee.deleted_at.is_(None)
                )
            ).scalars()
        )
        missing = sorted(wanted - found)
        if missing:
            raise InvalidInput(
                "linked_licence_numbers", f"unknown licence numbers: {', '.join(missing)}"
            )
