"""The licensee registry: buying houses / comptoirs, collectors, exporters, cooperatives."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..db.models import LicenceStatusChange, Licensee
from ..schemas.records import LicenseeCreate, LicenseeUpdate, StatusChange
from .errors import Conflict
from .records import RecordRegistry

LICENSEE_FIELDS = (
    "licence_number",
    "licence_type",
    "legal_name",
    "trade_names",
    "persons",
    "address",
    "region",
    "issued_on",
    "expires_on",
    "status",
    "handling",
)


def licensee_search_terms(values: Any) -> list[str]:
    return [
        values.licence_number,
        values.legal_name,
        *values.trade_names,
        *(p["name"] for p in values.persons),
        values.region or "",
    ]


class LicenseeRegistry(RecordRegistry[Licensee]):
    model = Licensee
    kind = "licensee"
    fields = LICENSEE_FIELDS
    filters = ("status", "licence_type", "region", "handling")

    def search_terms(self, record: Licensee) -> list[str]:
        return licensee_search_terms(record)

    def by_licence_number(self, number: str) -> Licensee | None:
        return self.session.execute(
            select(Licensee).where(Licensee.licence_number == number, Licensee.deleted_at.is_(None))
        ).scalar_one_or_none()

    def create(self, data: LicenseeCreate) -> Licensee:
        if self.by_licence_number(data.licence_number) is not None:
            raise Conflict(f"licence number {data.licence_number} is already registered")
        record = self.new_record(data.model_dump())
        self._status_changed(record, data.status, "registered")
        return record

    def update(self, ref: str, data: LicenseeUpdate) -> Licensee:
        values = data.model_dump(exclude_unset=True)
        expected = values.pop("version", None)
        return self.apply_changes(self.get(ref), values, expected)

    def set_status(
        self, ref: str, change: StatusChange, expected_version: int | None = None
    ) -> Licensee:
        record = self.get(ref)
        before = record.version
        self.apply_changes(record, {"status": change.status}, expected_version)
        if record.version != before:
            self._status_changed(record, change.status, change.reason)
        return record

    def _status_changed(self, record: Licensee, status: str, reason: str | None) -> None:
        self.session.add(
            LicenceStatusChange(
                licensee_id=record.id,
                status=status,
                reason=reason,
                changed_at=self.now,
                changed_by=self.actor.name,
            )
        )
