"""Reading an employee CSV as a stream: one physical line decoded at a time, each record handed
on as soon as it is read, so that a 100,000-row file is never held whole (as bytes, as text or
as rows) by the import that reads it.

Problems that leave the file unreadable as a whole stop at the first, exactly as if the whole
file had been decoded before anything else: too large, not UTF-8 (a bad byte anywhere beats a
NUL or a header problem, whichever line comes first), UTF-16, a NUL byte, unreadable CSV, an
empty file or a first line naming none of the required columns. No row can be trusted to mean
anything then, so anything collected before is dropped for that one problem.

Everything else is collected in one pass (:class:`Problems`), so that a person fixes the file
once: missing or repeated columns (reported on line 1, the other columns still checked), each
misshapen row (its neighbours still checked), and every content problem the import finds.
"""

from __future__ import annotations

import codecs
import csv
import heapq
import io
import operator
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

REQUIRED = ("email", "name", "department", "location", "timezone")
MAX_BYTES = 50 * 1024 * 1024
# Problems listed at most: a wholly wrong 100,000-row file is reported by its first thousand
# lines (and a count of the rest), neither held nor printed whole.
MAX_PROBLEMS = 1000
SAVE_AS = "save the file as “CSV UTF-8” and import it again"

# A file as given: its bytes (the HR screen, tests) or an open binary file (the command line).
Source = bytes | BinaryIO

# A lone carriage return ends a line too, as in text mode with newline="" (what csv expects).
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")


@dataclass(frozen=True)
class RowError:
    """One problem: its line (the header is line 1) and, when it is about one cell, the
    column's name (the message names it too, for a reader of the plain text)."""

    line: int
    message: str
    column: str | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ImportRejected(Exception):
    """A file (or the API's list) that cannot be imported: ``errors`` sorted by line, at most
    MAX_PROBLEMS of them, and ``more`` problems found beyond those."""

    def __init__(self, errors: list[RowError], summary: str = "", *, more: int = 0) -> None:
        super().__init__(summary or f"{len(errors)} bad row(s); nothing was imported")
        self.errors = errors
        self.more = more

    @property
    def total(self) -> int:
        return len(self.errors) + self.more

    def more_text(self) -> str:
        """The line that stands for the problems not listed ("" when all are)."""
        if not self.more:
            return ""
        return (
            f"…and {self.more:,} more problem{'s' if self.more != 1 else ''} "
            f"(only the first {len(self.errors):,} are listed)"
        )


class Problems:
    """Every problem one pass finds, in whatever order it finds them; the first MAX_PROBLEMS
    by line are kept (a heap whose root is the latest kept) and the rest only counted."""

    def __init__(self, limit: int = MAX_PROBLEMS) -> None:
        self._limit = limit
        self._kept: list[tuple[int, int, RowError]] = []  # (-line, -order, problem)
        self._found = 0
        self._lines: set[int] = set()  # the lines with a problem, for the summary
        self.header = False  # a problem with the columns (line 1)

    def __bool__(self) -> bool:
        return bool(self._found)

    def add(self, line: int, message: str, column: str | None = None) -> None:
        self._found += 1
        self._lines.add(line)
        entry = (-line, -self._found, RowError(line, message, column))
        if len(self._kept) < self._limit:
            heapq.heappush(self._kept, entry)
        elif entry > self._kept[0]:  # earlier than the latest kept: that one is dropped
            heapq.heapreplace(self._kept, entry)

    def add_header(self, message: str) -> None:
        self.header = True
        self.add(1, message)

    def rejected(self) -> ImportRejected:
        errors = [error for _, _, error in sorted(self._kept, reverse=True)]
        return ImportRejected(errors, self._summary(), more=self._found - len(errors))

    def _summary(self) -> str:
        rows = len(self._lines) - self.header
        parts = ["a problem with the columns"] if self.header else []
        parts += [f"{rows} bad row(s)"] if rows or not self.header else []
        return f"{' and '.join(parts)}; nothing was imported"


def whole_file(line: int, message: str) -> ImportRejected:
    """A problem with the file itself (size, encoding, header): no row count to report."""
    return ImportRejected([RowError(line, message)], "the file was not imported")


def _size(source: Source) -> int | None:
    if isinstance(source, bytes):
        return len(source)
    try:
        return os.fstat(source.fileno()).st_size
    except (OSError, io.UnsupportedOperation):
        return None  # a pipe: counted as it is read


class _Text:
    """The file's text, decoded a block of whole lines at a time (a megabyte: one C call
    each for decoding and splitting, where a Python step per line cost a third of the
    reading).

    Line numbers count ``\n`` as an editor does; a byte offset counts from after any UTF-8
    byte-order mark, as ``bytes.decode("utf-8-sig")`` reports it.
    """

    BLOCK = 2**20

    def __init__(self, source: Source, *, counted: bool) -> None:
        self._stream = io.BytesIO(source) if isinstance(source, bytes) else source
        self._counted = counted  # no size known beforehand: stop once past MAX_BYTES
        self._lines = 0  # \n read before the current block
        self._offset = 0  # bytes read before the current block (after any BOM)
        self._rest = b""  # the start of a line the last block cut off
        self._started = False
        self._nul = 0  # the line of the first NUL character seen, if any

    def pieces(self) -> Iterator[str]:
        """Lines as csv reads them from a file opened with newline=""."""
        while (block := self._block()) is not None:
            text = self._decoded(block)
            if self._nul:
                self.drain()
            # Split at \n, \r\n and a lone \r, as text mode with newline="" does.
            yield from io.StringIO(text, newline="")

    def drain(self) -> None:
        """Decode the rest: a bad byte there, else a NUL anywhere, is the file's first
        problem, as when the whole file was decoded before anything else was looked at."""
        while (block := self._block()) is not None:
            self._decoded(block)
        if self._nul:
            raise whole_file(self._nul, f"contains a NUL character (a UTF-16 file?); {SAVE_AS}")

    def _block(self) -> bytes | None:
        """The next run of whole lines; at the end of the file, whatever is left."""
        data = bytearray(self._rest)
        while True:
            more = self._stream.read(self.BLOCK)
            ended = not more
            if not self._started:
                self._started = True
                if more.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    raise whole_file(1, f"the file is UTF-16, not UTF-8; {SAVE_AS}")
                more = more.removeprefix(codecs.BOM_UTF8)
            data += more
            end = len(data) if ended else data.rfind(b"\n") + 1
            if end or ended:
                break
        self._rest = bytes(data[end:])
        if self._counted and self._offset + end > MAX_BYTES:
            raise whole_file(1, _TOO_LARGE)
        return bytes(data[:end]) or None

    def _decoded(self, block: bytes) -> str:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = self._lines + block[: exc.start].count(b"\n") + 1
            byte = self._offset + exc.start
            raise whole_file(line, f"not valid UTF-8 (byte {byte}); {SAVE_AS}") from None
        if not self._nul and "\0" in text:
            self._nul = self._lines + text[: text.find("\0")].count("\n") + 1
        self._lines += block.count(b"\n")
        self._offset += len(block)
        return text


_TOO_LARGE = f"the file is larger than {MAX_BYTES // 2**20} MiB"


def _header(first: list[str] | None, problems: Problems) -> list[str]:
    """The column names; missing or repeated ones are problems of line 1 (the rows are still
    read by the columns that are there: a repeated column by its first copy)."""
    if first is None:
        raise whole_file(1, f"the file is empty; its first line must be {','.join(REQUIRED)}")
    header = [name.strip().lower() for name in first]
    missing = [name for name in REQUIRED if name not in header]
    hint = " (separate columns with commas, not semicolons)" if ";" in ",".join(first) else ""
    if len(missing) == len(REQUIRED):
        # Not a header at all: no cell of any row could be told what it is.
        raise whole_file(1, f"missing column(s): {', '.join(missing)}{hint}")
    if repeated := sorted({name for name in header if name and header.count(name) > 1}):
        problems.add_header(f"repeated column(s): {', '.join(repeated)}")
    if missing:
        problems.add_header(f"missing column(s): {', '.join(missing)}{hint}")
    return header


def _shape_problem(header: list[str], values: list[str], needed: int) -> str | None:
    """A row with cells the header does not name, or without a required one (``needed``: the
    cells up to the last required column), is misquoted (an unquoted comma in a name), not a
    row to guess at."""
    if len(values) == len(header):
        return None  # nearly every row: nothing extra, nothing short
    extra = values[len(header) :]
    if any(value.strip() for value in extra) or len(values) < needed:
        return (
            f"{len(values)} values, but the header has {len(header)} columns "
            "(put a value that contains a comma in double quotes)"
        )
    return None


class Records:
    """A file's rows, each as the columns ``wanted`` that its header has (trimmed; a missing
    trailing cell is empty) with the line it starts on (a quoted value may span lines).

    Iterate once; the header's and each misshapen row's problems go to ``problems`` (a
    misshapen row is not handed on), those that make the file unreadable are raised.
    """

    def __init__(
        self,
        source: Source,
        wanted: Iterable[str] | None = None,
        problems: Problems | None = None,
    ) -> None:
        if (size := _size(source)) is not None and size > MAX_BYTES:
            raise whole_file(1, _TOO_LARGE)
        self.problems = Problems() if problems is None else problems
        self._text = _Text(source, counted=size is None)
        self._reader = csv.reader(self._text.pieces())
        self.header = self._read_header()
        self.missing = tuple(name for name in REQUIRED if name not in self.header)
        self._needed = 1 + max(self.header.index(name) for name in REQUIRED if name in self.header)
        names = [name for name in self.header if name] if wanted is None else wanted
        self.columns = tuple(name for name in names if name in self.header)
        places = [self.header.index(name) for name in self.columns]
        # One C call per row instead of a comprehension (which cost 1.8 s a 100,000 rows).
        self._pick = operator.itemgetter(*places) if len(places) > 1 else _one(places[0])

    def _read_header(self) -> list[str]:
        first = self._next()
        try:
            return _header(first, self.problems)
        except ImportRejected:
            self._text.drain()  # a bad byte anywhere is the problem reported instead
            raise

    def _next(self) -> list[str] | None:
        start = self._reader.line_num + 1
        try:
            return next(self._reader, None)
        except csv.Error as exc:
            self._text.drain()
            raise whole_file(start, f"unreadable CSV: {exc}") from None

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        width = len(self.header)
        while True:
            start = self._reader.line_num + 1
            values = self._next()
            if values is None:
                break
            if not "".join(values).strip():
                continue  # a blank row
            if problem := _shape_problem(self.header, values, self._needed):
                self.problems.add(start, problem)
                continue
            if len(values) < width:
                values += [""] * (width - len(values))
            yield start, list(map(str.strip, self._pick(values)))


def _one(place: int) -> Callable[[list[str]], tuple[str, ...]]:
    return lambda values: (values[place],)


def read_rows(data: Source) -> list[tuple[int, dict[str, str]]]:
    """Every row keyed by column, each with the line it starts on; see :class:`Records`.
    ImportRejected listing the file's structural problems, if it has any."""
    records = Records(data)
    rows = [(line, dict(zip(records.columns, cells, strict=True))) for line, cells in records]
    if records.problems:
        raise records.problems.rejected()
    return rows
