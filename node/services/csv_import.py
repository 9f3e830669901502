"""Bulk import of licensees and subjects from CSV: all or nothing, in bounded memory.

``CsvImport.run`` reads the file a piece at a time (``csv_text``) and validates each row
with the same pydantic model the API uses (``csv_format``). Rows go in windows of
``WINDOW_ROWS``: each window's licence numbers are checked against the rows before it
(``seen_numbers``) and the database, then, while no error has been found, the window is
written (``bulk_insert``) inside a savepoint. The first error rolls the savepoint back
and stops the writing; reading goes on to report every error. Errors name the row as a
spreadsheet shows it (the header is row 1; a quoted cell spanning several lines is still
one row) and the column by its header. ``import_csv`` runs one import in one
transaction: the command line and the benchmark use it; the API and console routes use
``CsvImport`` within their request session.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any, BinaryIO

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from ..db import transaction
from ..db.models import Licensee
from .actors import Actor
from .audit import AuditEvent, AuditLog
from .bulk_insert import BulkInsert, roomy_page_cache
from .csv_format import FORMATS, RecordFormat
from .csv_text import TextSource, UnreadableFile, column_key, read_records, sniff_delimiter
from .seen_numbers import SeenLicenceNumbers

MAX_IMPORT_BYTES = 50 * 1024 * 1024  # over the API and console; a larger upload is refused

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)`` with phases ``validate`` and ``write`` and
counts of rows; ``total`` is estimated from the bytes read until the whole file is."""

MAX_REPORTED_ERRORS = 1000  # the report lists the first ones; ``errors_total`` counts all
WINDOW_ROWS = 5000  # rows validated, checked and written together
SQLITE_CACHE_KIB = 64 * 1024
_LOOKUP_CHUNK = 500
_PROGRESS_EVERY = 1000

Window = list[tuple[int, Any]]  # (row, validated model)


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
    """Counts every error and keeps the first ``MAX_REPORTED_ERRORS`` by row.

    Errors come a window of rows at a time, each window after the ones before it, so
    what ``trim`` drops at the end of a window can never be among the first.
    """

    def __init__(self) -> None:
        self.kept: list[tuple[int, int, str | None, str]] = []
        self.total = 0
        self.rows: set[int] = set()  # rows of the current window with an error

    def add(self, row: int, column: str | None, message: str, order: int = 0) -> None:
        self.total += 1
        self.rows.add(row)
        self.kept.append((row, order, column, message))

    def trim(self) -> None:
        self.kept.sort(key=lambda e: (e[0], e[1]))
        del self.kept[MAX_REPORTED_ERRORS:]

    def report(self) -> list[RowError]:
        self.trim()
        return [RowError(r, c, m) for r, _, c, m in self.kept]


class _Writes:
    """The windows written so far, inside one savepoint; ``undo`` rolls them back."""

    def __init__(self, session: Session, actor: Actor, now: datetime, fmt: RecordFormat) -> None:
        self.session, self.actor, self.now, self.fmt = session, actor, now, fmt
        self.written = 0
        self._savepoint: SessionTransaction | None = None

    def write(self, window: Window) -> None:
        if self._savepoint is None:
            self._savepoint = self.session.begin_nested()
        refs = BulkInsert(self.session, self.actor, self.now).insert(
            self.fmt.registry, [model for _, model in window]
        )
        actor, kind, detail = str(self.actor), self.fmt.kind, {"version": 1, "source": "import"}
        AuditLog(self.session).record_many(
            (AuditEvent(actor, f"{kind}.create", kind, ref, detail) for ref in refs), now=self.now
        )
        self.written += len(refs)

    def finish(self, sha256: str) -> None:
        """Audit the completed import and keep what was written."""
        kind = self.fmt.kind
        AuditLog(self.session).record_many(
            [
                AuditEvent(
                    str(self.actor),
                    "import.completed",
                    kind,
                    None,
                    {"kind": kind, "rows": self.written, "sha256": sha256},
                )
            ],
            now=self.now,
        )
        if self._savepoint is not None:
            self._savepoint.commit()
            self._savepoint = None

    def undo(self) -> None:
        if self._savepoint is not None:
            self._savepoint.rollback()
            self._savepoint = None
        self.written = 0


class _CollectorPause:
    """Pauses Python's automatic cyclic garbage collection while any import runs
    (process-wide); ``collect_young`` collects what the last window left.

    The objects of a window survive its validation and land in the oldest generation,
    whose collections traverse every object of the process again: a fifth of an import's
    time. The young generations, collected after each window, hold that window's cycles.
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

    @staticmethod
    def collect_young() -> None:
        gc.collect(1)


collector_paused = _CollectorPause()


class CsvImport:
    def __init__(self, session: Session, actor: Actor, now: datetime) -> None:
        self.session = session
        self.actor = actor
        self.now = now

    def run(
        self,
        kind: str,
        source: BinaryIO,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Validate the CSV file read from ``source``; unless it has an error or ``dry_run``
        is set, write every row. Never commits, and leaves nothing written on an error."""
        fmt = FORMATS[kind]
        text = TextSource(source)
        report = ImportReport(kind=kind, sha256="", dry_run=dry_run)
        errors = _Errors()
        progress = progress or _quiet
        writes = _Writes(self.session, self.actor, self.now, fmt)
        with (
            collector_paused(),
            roomy_page_cache(self.session, SQLITE_CACHE_KIB),
            SeenLicenceNumbers() as seen,
        ):
            try:
                for window in self._windows(fmt, text, report, errors, seen, progress):
                    if errors.total:
                        writes.undo()
                    elif not dry_run:
                        writes.write(window)
                        progress("write", writes.written, _estimate(writes.written, text))
                    collector_paused.collect_young()
                text.drain()
                report.sha256 = text.sha256
                if errors.total or dry_run:
                    writes.undo()
                else:
                    writes.finish(report.sha256)
            except BaseException:
                writes.undo()
                raise
        report.written = writes.written
        report.errors_total, report.errors = errors.total, errors.report()
        return report

    # -- validation --------------------------------------------------------------------
    def _windows(
        self,
        fmt: RecordFormat,
        text: TextSource,
        report: ImportReport,
        errors: _Errors,
        seen: SeenLicenceNumbers,
        progress: Progress,
    ) -> Iterator[Window]:
        """The rows read into models, a window at a time, once checked against the rows
        before them and the database; every error found is in ``errors``."""
        try:
            lines = text.lines()
            first = []  # up to the first line that is not empty: the header, for its delimiter
            for line in lines:
                first.append(line)
                if line.strip("\r\n"):
                    break
            delimiter = sniff_delimiter(first[-1] if first else "", fmt.column_names)
            records = read_records(chain(first, lines), delimiter)
            # Blank lines before the header are skipped.
            header_row, header = next(
                ((n, c) for n, c in records if any(x.strip() for x in c)), (1, [])
            )
            if not header:
                errors.add(
                    header_row, None, "the file is empty; its first row must name the columns"
                )
                return
            columns = self._check_header(fmt, header_row, header, errors)
            order = {name: i for i, name in enumerate(fmt.column_names)}
            window: Window = []
            read = 0  # rows of this window
            for row, cells in records:
                if not any(c.strip() for c in cells):
                    continue
                report.rows_total += 1
                if columns is None:
                    continue  # a required column is missing: the rows are only counted
                model = self._read_row(fmt, header, columns, order, row, cells, errors)
                if model is not None:
                    window.append((row, model))
                read += 1
                if report.rows_total % _PROGRESS_EVERY == 0:
                    progress("validate", report.rows_total, _estimate(report.rows_total, text))
                if read == WINDOW_ROWS:
                    yield self._checked(fmt, window, header, columns, report, errors, seen)
                    window, read = [], 0
        except UnreadableFile as exc:
            errors.add(exc.row, None, exc.message)
            return
        progress("validate", report.rows_total, report.rows_total)
        if columns is not None:
            yield self._checked(fmt, window, header, columns, report, errors, seen)

    def _read_row(
        self,
        fmt: RecordFormat,
        header: list[str],
        columns: list[str | None],
        order: dict[str, int],
        row: int,
        cells: list[str],
        errors: _Errors,
    ) -> BaseModel | None:
        extra = [c for c in cells[len(header) :] if c.strip()]
        if extra:
            errors.add(row, None, f"{len(cells)} cells, but the header names {len(header)} columns")
            return None
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
        return model

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
            name = column_key(cell)
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

    def _checked(
        self,
        fmt: RecordFormat,
        window: Window,
        header: list[str],
        columns: list[str | None],
        report: ImportReport,
        errors: _Errors,
        seen: SeenLicenceNumbers,
    ) -> Window:
        """``window`` after the checks across rows; counts its valid rows."""
        if fmt.name == "licensees":
            column = header[columns.index("licence_number")].strip()
            self._check_licence_numbers(window, column, errors, seen)
        elif "linked_licence_numbers" in columns:
            column = header[columns.index("linked_licence_numbers")].strip()
            self._check_linked_licences(window, column, errors)
        report.rows_valid += sum(row not in errors.rows for row, _ in window)
        errors.rows.clear()
        errors.trim()
        return window

    def _check_licence_numbers(
        self, window: Window, column: str, errors: _Errors, seen: SeenLicenceNumbers
    ) -> None:
        earlier = seen.earlier({model.licence_number for _, model in window})
        first_row: dict[str, int] = {}
        for row, model in window:
            number = model.licence_number
            first = earlier[number][0] if number in earlier else first_row.get(number)
            if first is not None:
                errors.add(row, column, f"licence number {number} already appears on row {first}")
            else:
                first_row[number] = row
        registered = self._registered(first_row)
        seen.add(first_row, registered)
        for row, model in window:
            number = model.licence_number
            if number in registered or earlier.get(number, (0, False))[1]:
                errors.add(row, column, f"licence number {number} is already registered")

    def _check_linked_licences(self, window: Window, column: str, errors: _Errors) -> None:
        wanted = {n for _, model in window for n in model.linked_licence_numbers}
        if not wanted:
            return
        registered = self._registered(wanted)
        for row, model in window:
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


def _estimate(rows: int, text: TextSource) -> int:
    """The rows of the whole file, estimated from the share of its bytes read so far."""
    if text.size is None or not text.bytes_read:
        return rows
    return max(rows, round(rows * text.size / text.bytes_read))


def _quiet(phase: str, done: int, total: int) -> None:
    pass


def import_csv(
    sessions: sessionmaker[Session],
    kind: str,
    source: BinaryIO,
    *,
    actor: Actor,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """One import in one transaction, committed only if every row was written."""
    with transaction(sessions) as session:
        return CsvImport(session, actor, now).run(kind, source, dry_run=dry_run, progress=progress)
