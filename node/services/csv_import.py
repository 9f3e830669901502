"""Bulk import of licensees and subjects from CSV: all or nothing.

``CsvImport.run`` reads the whole file, validates every row (each with the same pydantic
model the API uses, see ``csv_format``), checks licence numbers against the file itself
and the database, and writes only if no row is invalid (``bulk_insert``). Errors name the
row as a spreadsheet shows it (the header is row 1; a quoted cell spanning several lines
is still one row) and the column by its header. ``import_csv`` runs one import in one
transaction: the command line and the benchmark use it; the API route uses ``CsvImport``
within its request session.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ..db import transaction
from ..db.models import Licensee
from .actors import Actor
from .audit import AuditEvent, AuditLog
from .bulk_insert import BulkInsert, roomy_page_cache
from .csv_format import FORMATS, RecordFormat
from .records import fold

MAX_IMPORT_BYTES = 50 * 1024 * 1024  # a larger file is refused before it is read
MAX_CELL_CHARS = csv.field_size_limit()  # 128 Ki characters: a longer cell (or header) is refused

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``; phases are ``validate`` and ``write``."""

MAX_REPORTED_ERRORS = 1000  # the report lists the first ones; ``errors_total`` counts all
_MAX_KEPT_ERRORS = 100_000  # bound memory on hopeless files before sorting
_LOOKUP_CHUNK = 500
_PROGRESS_EVERY = 1000


@dataclass
class RowError:
    row: int
    column: str | None
    message: str


@dataclass
class ImportReport:
    kind: str
    sha256: str
    dry_run: bool = False
    rows_total: int = 0
    rows_valid: int = 0
    written: int = 0
    errors_total: int = 0
    errors: list[RowError] = field(default_factory=list)


class _Errors:
    """Collects errors, then sorts them by row and keeps the first ``MAX_REPORTED_ERRORS``."""

    def __init__(self) -> None:
        self.kept: list[tuple[int, int, str | None, str]] = []
        self.total = 0
        self.rows: set[int] = set()

    def add(self, row: int, column: str | None, message: str, order: int = 0) -> None:
        self.total += 1
        self.rows.add(row)
        if len(self.kept) < _MAX_KEPT_ERRORS:
            self.kept.append((row, order, column, message))

    def report(self) -> list[RowError]:
        self.kept.sort(key=lambda e: (e[0], e[1]))
        return [RowError(r, c, m) for r, _, c, m in self.kept[:MAX_REPORTED_ERRORS]]


class UnreadableFile(ValueError):
    def __init__(self, row: int, message: str) -> None:
        super().__init__(f"row {row}: {message}")
        self.row = row
        self.message = message


def decode(data: bytes) -> str:
    """UTF-8 text without its BOM; ``UnreadableFile`` names the row of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        raise UnreadableFile(
            row, 'the file is not UTF-8 text; save it as "CSV UTF-8" and try again'
        ) from None


def sniff_delimiter(header_line: str, known: Iterable[str]) -> str:
    """``;`` or ``,``: whichever splits the header into more known column names."""
    names = set(known)

    def score(delimiter: str) -> tuple[int, int]:
        try:
            cells = next(csv.reader([header_line], delimiter=delimiter), [])
        except csv.Error:  # a cell over the limit: reported by ``read_records``
            return 0, 0
        return sum(_column_key(c) in names for c in cells), len(cells)

    return max((";", ","), key=score)


def _column_key(header: str) -> str:
    return "_".join(fold(header).replace("-", " ").split())


def read_records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for every CSV record; blank lines count as rows."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    row = 0
    while True:
        row += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field limit" in str(exc):
                raise UnreadableFile(
                    row, f"a cell is longer than {MAX_CELL_CHARS} characters; is this a CSV file?"
                ) from None
            raise UnreadableFile(row, f"unreadable CSV ({exc})") from None
        yield row, cells


class _CollectorPause:
    """Pauses Python's cyclic garbage collector while any import runs (process-wide).

    An import holds about ten container objects per row (models, dicts, lists) until it
    is written; each full collection traverses them all again, which costs ~40 % of a
    100,000-row import. Reference counting still frees memory meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._was_enabled = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._active == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0 and self._was_enabled:
                    gc.enable()


collector_paused = _CollectorPause()


class CsvImport:
    def __init__(self, session: Session, actor: Actor, now: datetime) -> None:
        self.session = session
        self.actor = actor
        self.now = now

    def run(
        self, kind: str, data: bytes, *, dry_run: bool = False, progress: Progress | None = None
    ) -> ImportReport:
        """Validate ``data``; unless invalid or ``dry_run``, write every row. Never commits."""
        fmt = FORMATS[kind]
        report = ImportReport(kind=kind, sha256=hashlib.sha256(data).hexdigest(), dry_run=dry_run)
        errors = _Errors()
        with collector_paused():
            valid = self._validate(fmt, data, report, errors, progress or _quiet)
            report.rows_valid = len(valid) - sum(row in errors.rows for row, _ in valid)
            report.errors_total, report.errors = errors.total, errors.report()
            if errors.total or dry_run:
                return report
            with roomy_page_cache(self.session):
                refs = BulkInsert(self.session, self.actor, self.now).insert(
                    fmt.registry, [model for _, model in valid], progress=progress
                )
                del valid
                self._audit(fmt, refs, report)
        report.written = len(refs)
        return report

    # -- validation --------------------------------------------------------------------
    def _validate(
        self,
        fmt: RecordFormat,
        data: bytes,
        report: ImportReport,
        errors: _Errors,
        progress: Progress,
    ) -> list[tuple[int, BaseModel]]:
        try:
            text = decode(data)
            first_line = text.lstrip("\r\n").split("\n", 1)[0]
            records = list(read_records(text, sniff_delimiter(first_line, fmt.column_names)))
        except UnreadableFile as exc:
            errors.add(exc.row, None, exc.message)
            return []
        while records and not any(c.strip() for c in records[0][1]):
            records.pop(0)  # blank lines before the header
        if not records:
            errors.add(1, None, "the file is empty; its first row must name the columns")
            return []
        (header_row, header), rows = records[0], records[1:]
        rows = [(n, cells) for n, cells in rows if any(c.strip() for c in cells)]
        report.rows_total = len(rows)
        columns = self._check_header(fmt, header_row, header, errors)
        if columns is None:
            return []
        order = {name: i for i, name in enumerate(fmt.column_names)}
        valid: list[tuple[int, BaseModel]] = []
        for done, (row, cells) in enumerate(rows, 1):
            if done % _PROGRESS_EVERY == 0:
                progress("validate", done, len(rows))
            extra = [c for c in cells[len(header) :] if c.strip()]
            if extra:
                errors.add(
                    row, None, f"{len(cells)} cells, but the header names {len(header)} columns"
                )
                continue
            values = {name: cell for name, cell in zip(columns, cells, strict=False) if name}
            for name, cell in zip(columns, cells, strict=False):
                if name is None and cell.strip():
                    errors.add(
                        row, None, f"a value ({cell.strip()[:40]!r}) under a column without a name"
                    )
            model, problems = fmt.read_row(values)
            for column, message in problems:
                errors.add(
                    row,
                    header[columns.index(column)].strip() if column in columns else column,
                    message,
                    order.get(column, 0),
                )
            if model is not None:
                valid.append((row, model))
        progress("validate", len(rows), len(rows))
        if fmt.name == "licensees":
            self._check_licence_numbers(valid, header, columns, errors)
        else:
            self._check_linked_licences(valid, header, columns, errors)
        return valid

    def _check_header(
        self, fmt: RecordFormat, row: int, header: list[str], errors: _Errors
    ) -> list[str | None] | None:
        """Canonical column name per position, or None if a required column is missing.

        A column without a name is None (its cells must be empty); an unknown or repeated
        one is "" (reported here once, its cells ignored).
        """
        columns: list[str | None] = []
        known = set(fmt.column_names)
        for cell in header:
            name = _column_key(cell)
            if not name:
                columns.append(None)
            elif name not in known:
                errors.add(
                    row,
                    cell.strip(),
                    f"unknown column; the columns of {fmt.name} are: {', '.join(fmt.column_names)}",
                )
                columns.append("")
            elif name in columns:
                errors.add(row, cell.strip(), "this column appears twice")
                columns.append("")
            else:
                columns.append(name)
        missing = [name for name in fmt.required if name not in columns]
        for name in missing:
            errors.add(row, name, "required column is missing")
        return None if missing else columns

    def _check_licence_numbers(
        self,
        valid: list[tuple[int, Any]],
        header: list[str],
        columns: list[str | None],
        errors: _Errors,
    ) -> None:
        column = header[columns.index("licence_number")].strip()
        first_row: dict[str, int] = {}
        for row, model in valid:
            number = model.licence_number
            if number in first_row:
                errors.add(
                    row,
                    column,
                    f"licence number {number} already appears on row {first_row[number]}",
                )
            else:
                first_row[number] = row
        registered = self._registered(first_row)
        for row, model in valid:
            if model.licence_number in registered:
                errors.add(
                    row, column, f"licence number {model.licence_number} is already registered"
                )

    def _check_linked_licences(
        self,
        valid: list[tuple[int, Any]],
        header: list[str],
        columns: list[str | None],
        errors: _Errors,
    ) -> None:
        wanted = {n for _, model in valid for n in model.linked_licence_numbers}
        if not wanted:
            return
        column = header[columns.index("linked_licence_numbers")].strip()
        registered = self._registered(wanted)
        for row, model in valid:
            missing = [n for n in model.linked_licence_numbers if n not in registered]
            if missing:
                errors.add(row, column, f"unknown licence numbers: {', '.join(missing)}")

    def _registered(self, numbers: Iterable[str]) -> set[str]:
        """Which of ``numbers`` belong to live licensees."""
        numbers = list(numbers)
        found: set[str] = set()
        for start in range(0, len(numbers), _LOOKUP_CHUNK):
            found.update(
                self.session.execute(
                    select(Licensee.licence_number).where(
                        Licensee.licence_number.in_(numbers[start : start + _LOOKUP_CHUNK]),
                        Licensee.deleted_at.is_(None),
                    )
                ).scalars()
            )
        return found

    # -- writing -----------------------------------------------------------------------
    def _audit(self, fmt: RecordFormat, refs: list[str], report: ImportReport) -> None:
        actor = str(self.actor)
        detail = {"version": 1, "source": "import"}
        events = [AuditEvent(actor, f"{fmt.kind}.create", fmt.kind, ref, detail) for ref in refs]
        events.append(
            AuditEvent(
                actor,
                "import.completed",
                fmt.kind,
                None,
                {
                    "kind": fmt.kind,
                    "rows": len(refs),
                    "sha256": report.sha256,
                },
            )
        )
        AuditLog(self.session).record_many(events, now=self.now)


def _quiet(phase: str, done: int, total: int) -> None:
    pass


def import_csv(
    sessions: sessionmaker[Session],
    kind: str,
    data: bytes,
    *,
    actor: Actor,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """One import in one transaction, committed only if every row was written."""
    with transaction(sessions) as session:
        return CsvImport(session, actor, now).run(kind, data, dry_run=dry_run, progress=progress)
