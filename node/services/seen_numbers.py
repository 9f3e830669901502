"""The licence numbers an import has read so far: the row each first appears on, and
whether a live licensee had it already. They live in a private temporary SQLite file
(deleted when closed), so a file of millions of rows is checked for repeated numbers in
bounded memory whatever the node's database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping
from types import TracebackType

_LOOKUP_CHUNK = 500
_CACHE_KIB = 8 * 1024


class SeenLicenceNumbers:
    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a temporary file, removed on close
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        self._db.execute(
            "CREATE TABLE seen (number TEXT PRIMARY KEY, first_row INTEGER NOT NULL,"
            " registered INTEGER NOT NULL) WITHOUT ROWID"
        )

    def __enter__(self) -> SeenLicenceNumbers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._db.close()

    def earlier(self, numbers: Collection[str]) -> dict[str, tuple[int, bool]]:
        """Those of ``numbers`` already seen: number -> (first row, registered)."""
        wanted = list(numbers)
        found: dict[str, tuple[int, bool]] = {}
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            part = wanted[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(part))
            query = f"SELECT number, first_row, registered FROM seen WHERE number IN ({marks})"  # noqa: S608 - only placeholders
            found.update((n, (row, bool(r))) for n, row, r in self._db.execute(query, part))
        return found

    def add(self, first_rows: Mapping[str, int], registered: Collection[str]) -> None:
        """Remember numbers seen for the first time, with their rows."""
        self._db.executemany(
            "INSERT INTO seen VALUES (?, ?, ?)",
            ((n, row, n in registered) for n, row in first_rows.items()),
        )
        self._db.commit()
