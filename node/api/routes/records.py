"""CRUD routes for licensees and subjects, built by one factory so both kinds behave
alike: list with filters, search and pagination; create; read; update; soft-delete;
history. Writes are for analysts; reads for officers and analysts, each within its
clearance: a record above it is not listed nor counted, and its ref answers 404."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from ...schemas.common import Page
from ...schemas.records import HistoryEntry
from ...services.records import RecordRegistry
from ...web.params import ExpectedVersion, Offset
from ..deps import AsReader, AsWriter


def make_record_router(
    *,
    prefix: str,
    tag: str,
    registry: type[RecordRegistry[Any]],
    create_model: type[BaseModel],
    update_model: type[BaseModel],
    out_model: type[BaseModel],
    filters: type[BaseModel],
) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=[tag])
    kind = registry.kind

    def out(record: Any) -> Any:
        return out_model.model_validate(record, from_attributes=True)

    @router.get("", response_model=Page[out_model], summary=f"List {tag}")  # type: ignore[valid-type]
    def list_records(
        work: AsReader,
        where: Annotated[filters, Query()],  # type: ignore[valid-type]
        q: Annotated[str | None, Query(max_length=200, description="Text search")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Offset = 0,
    ) -> Any:
        items, total = work.registry(registry).search(
            q=q, limit=limit, offset=offset, **BaseModel.model_dump(where)
        )
        work.commit()  # lists of some kinds are audited
        return {"items": [out(r) for r in items], "total": total, "limit": limit, "offset": offset}

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=out_model,
        summary=f"Create a {kind}",
    )
    def create_record(work: AsWriter, body: create_model) -> Any:  # type: ignore[valid-type]
        record = work.registry(registry).create(body)
        work.commit()
        return out(record)

    @router.get("/{ref}", response_model=out_model, summary=f"Read a {kind}")
    def read_record(work: AsReader, ref: str) -> Any:
        record = work.registry(registry).read(ref)
        work.commit()  # reads of some kinds are audited
        return out(record)

    @router.patch("/{ref}", response_model=out_model, summary=f"Update a {kind}")
    def update_record(work: AsWriter, ref: str, body: update_model) -> Any:  # type: ignore[valid-type]
        record = work.registry(registry).update(ref, body)
        work.commit()
        return out(record)

    @router.delete(
        "/{ref}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary=f"Delete a {kind} (kept in history)",
    )
    def delete_record(
        work: AsWriter,
        ref: str,
        version: ExpectedVersion = None,
    ) -> None:
        work.registry(registry).delete(ref, version)
        work.commit()

    @router.get("/{ref}/history", response_model=list[HistoryEntry], summary=f"History of a {kind}")
    def record_history(work: AsReader, ref: str) -> Any:
        changes = work.registry(registry).history(ref)
        work.commit()  # histories of some kinds are audited
        return [HistoryEntry.model_validate(change, from_attributes=True) for change in changes]

    return router
