"""Reading a CSV file a piece at a time: UTF-8 text (with or without a byte-order mark),
its lines as ``io.StringIO(newline="")`` splits them, and its records with their row
numbers. ``csv_import`` validates the records; the file itself is never held whole.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from .records import fold

MAX_CELL_CHARS = csv.field_size_limit()  # 128 Ki characters: a longer cell (or header) is refused
READ_BYTES = 1024 * 1024


class UnreadableFile(ValueError):
    def __init__(self, row: int, message: str) -> None:
        super().__init__(f"row {row}: {message}")
        self.row = row
        self.message = message


class TextSource:
    """The lines of a UTF-8 file read from ``stream``; hashes and counts the bytes read.

    ``lines`` raises ``UnreadableFile`` naming the row (line) of the first byte that is not
    UTF-8. ``size`` is the number of bytes left to read when known (a seekable stream).
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._head: bytes | None = b""  # the first bytes, until the byte-order mark is known
        self._newlines = 0  # line feeds in the bytes decoded so far
        self.bytes_read = 0
        self.size = _size(stream)

    @property
    def sha256(self) -> str:
        """The hex digest of the bytes read so far (all of them after ``drain``)."""
        return self._hash.hexdigest()

    def lines(self) -> Iterator[str]:
        pending = ""  # an unfinished line, carried into the next piece
        while True:
            data = self._read()
            final = not data
            text = pending + self._decode(data, final)
            if final:
                yield from io.StringIO(text, newline="")
                return
            held = ""
            if text.endswith("\r"):  # its "\n" may begin the next piece: one line ending
                text, held = text[:-1], "\r"
            lines = io.StringIO(text, newline="").readlines()
            pending = held
            if lines and not lines[-1].endswith(("\n", "\r")):
                pending = lines.pop() + held
            yield from lines

    def drain(self) -> None:
        """Read the rest of the file (for its hash) without decoding it."""
        while self._read():
            pass

    def _read(self) -> bytes:
        data = self._stream.read(READ_BYTES)
        self._hash.update(data)
        self.bytes_read += len(data)
        return data

    def _decode(self, data: bytes, final: bool) -> str:
        if self._head is not None:  # strip a byte-order mark, even one split across reads
            self._head += data
            if len(self._head) < len(codecs.BOM_UTF8) and not final:
                return ""
            data, self._head = self._head.removeprefix(codecs.BOM_UTF8), None
        buffered = len(self._decoder.getstate()[0])  # bytes of a character begun before
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            row = self._newlines + data[: max(0, exc.start - buffered)].count(b"\n") + 1
            raise UnreadableFile(
                row, 'the file is not UTF-8 text; save it as "CSV UTF-8" and try again'
            ) from None
        self._newlines += data.count(b"\n")
        return text


def _size(stream: BinaryIO) -> int | None:
    try:
        if not stream.seekable():
            return None
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
    except (OSError, ValueError):
        return None
    return end - here


def sniff_delimiter(header_line: str, known: Iterable[str]) -> str:
    """``;`` or ``,``: whichever splits the header into more known column names."""
    names = set(known)

    def score(delimiter: str) -> tuple[int, int]:
        try:
            cells = next(csv.reader([header_line], delimiter=delimiter), [])
        except csv.Error:  # a cell over the limit: reported by ``read_records``
            return 0, 0
        return sum(column_key(c) in names for c in cells), len(cells)

    return max((";", ","), key=score)


def column_key(header: str) -> str:
    """The column name a header cell means: ``Licence Number`` is ``licence_number``."""
    return "_".join(fold(header).replace("-", " ").split())


def read_records(lines: Iterable[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for every CSV record; blank lines count as rows."""
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
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
