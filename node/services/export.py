"""Export of all live licensees or subjects, as CSV or JSON, streamed in pages.

CSV uses the import's column set (``csv_format``), ``,`` as separator and UTF-8 with a
byte-order mark, so that Excel (French locale included) shows accents correctly and the
file imports again unchanged. Persons other than directors and beneficial owners, and
persons' details beyond their names, have no CSV column: JSON carries every field
(including each licensee's status history and the record metadata).

An export holds only the records within the actor's clearance, and is audited
(``export.started``, committed before the first byte is sent): who took which kind, in
which format, at which clearance, how many records. Records created after the export
started are left out (``up_to_id``), so the entry names exactly the records sent: the
live ones of that kind with an id up to ``up_to_id`` and a TLP level within the
clearance (the record history shows which those were at that moment).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from ..db.models import Licensee
from .actors import Actor
from .audit import AuditLog
from .clearance import within_clearance
from .csv_format import FORMATS, RecordFormat

FORMAT_MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
PAGE = 1000
BOM = "\ufeff"


@dataclass
class Export:
    """An export under way: what it holds, and its bytes, chunk by chunk."""

    kind: str
    format: str
    count: int
    filename: str
    media_type: str
    chunks: Iterator[bytes]


def start_export(
    sessions: sessionmaker[Session],
    kind: str,
    fmt: str,
    *,
    actor: Actor,
    now: datetime,
    node_id: str = "",
) -> Export:
    """Audit the export (committed at once) and return it; reading happens as it is sent."""
    record_format = FORMATS[kind]
    if fmt not in FORMAT_MEDIA_TYPES:
        raise ValueError(f"unknown export format {fmt!r}; use csv or json")
    with sessions() as session:
        model = record_format.registry.model
        up_to_id = session.execute(select(func.max(model.id))).scalar_one() or 0
        count = session.execute(
            select(func.count())
            .select_from(model)
            .where(*_selection(model, actor, up_to_id), model.deleted_at.is_(None))
        ).scalar_one()
        AuditLog(session).record(
            str(actor),
            "export.started",
            now=now,
            target_kind=record_format.kind,
            detail={
                "kind": record_format.kind,
                "format": fmt,
                "records": count,
                "clearance": actor.clearance,
                "up_to_id": up_to_id,
            },
        )
        session.commit()
    writer = csv_chunks if fmt == "csv" else json_chunks
    stem = "-".join(p for p in (kind, node_id, now.strftime("%Y%m%d")) if p)
    return Export(
        kind,
        fmt,
        count,
        f"{stem}.{fmt}",
        FORMAT_MEDIA_TYPES[fmt],
        _in_session(sessions, writer, record_format, _selection(model, actor, up_to_id), now),
    )


def _selection(model: Any, actor: Actor, up_to_id: int) -> tuple[Any, ...]:
    """What an export holds: records that existed when it started, within clearance."""
    return (model.id <= up_to_id, within_clearance(model.handling, actor))


def _in_session(
    sessions: sessionmaker[Session],
    writer: Any,
    record_format: RecordFormat,
    selection: tuple[Any, ...],
    now: datetime,
) -> Iterator[bytes]:
    with sessions() as session:
        yield from writer(session, record_format, selection, now)


def live_records(
    session: Session,
    record_format: RecordFormat,
    selection: tuple[Any, ...],
    *,
    history: bool = False,
) -> Iterator[Any]:
    """Live records of the selection in id order, a page at a time (memory stays flat)."""
    model = record_format.registry.model
    last = 0
    while True:
        query = (
            select(model)
            .where(model.id > last, model.deleted_at.is_(None), *selection)
            .order_by(model.id)
            .limit(PAGE)
        )
        if history and model is Licensee:
            query = query.options(selectinload(Licensee.status_history))
        page = session.execute(query).scalars().all()
        if not page:
            return
        yield from page
        last = page[-1].id
        session.expunge_all()


def csv_chunks(
    session: Session, record_format: RecordFormat, selection: tuple[Any, ...], now: datetime
) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(record_format.column_names)
    for n, record in enumerate(live_records(session, record_format, selection), 1):
        writer.writerow(record_format.write_row(record))
        if n % PAGE == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def json_chunks(
    session: Session, record_format: RecordFormat, selection: tuple[Any, ...], now: datetime
) -> Iterator[bytes]:
    """``{"kind": ..., "exported_at": ..., "items": [...]}``, one item per line."""
    head = json.dumps({"kind": record_format.name, "exported_at": now.isoformat()})
    parts = [head[:-1] + ', "items": [']
    separator = "\n"
    for n, record in enumerate(live_records(session, record_format, selection, history=True), 1):
        item = record_format.out_model.model_validate(record, from_attributes=True)
        parts.append(separator + item.model_dump_json())
        separator = ",\n"
        if n % PAGE == 0:
            yield "".join(parts).encode("utf-8")
            parts = []
    parts.append("\n]}\n")
    yield "".join(parts).encode("utf-8")


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return data
