"""Reading an employee CSV as a stream: one physical line decoded at a time, each record handed
on as soon as it is read, so that a 100,000-row file is never held whole (as bytes, as text or
as rows) by the import that reads it.

The file's own problems (size, encoding, header, unreadable CSV) stop at the first, exactly as
if the whole file had been decoded before anything else: a bad byte anywhere beats a NUL or a
header problem, whichever line comes first. Misshapen rows are collected and reported together
once the file has been read.
"""

from __future__ import annotations

import codecs
import csv
import io
import operator
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

REQUIRED = ("email", "name", "department", "location", "timezone")
MAX_BYTES = 50 * 1024 * 1024
SAVE_AS = "save the file as “CSV UTF-8” and import it again"

# A file as given: its bytes (the HR screen, tests) or an open binary file (the command line).
Source = bytes | BinaryIO

# A lone carriage return ends a line too, as in text mode with newline="" (what csv expects).
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ImportRejected(Exception):
    def __init__(self, errors: list[RowError], summary: str = "") -> None:
        super().__init__(summary or f"{len(errors)} bad row(s); nothing was imported")
        self.errors = errors


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


def _header(first: list[str] | None) -> list[str]:
    if first is None:
        raise whole_file(1, f"the file is empty; its first line must be {','.join(REQUIRED)}")
    header = [name.strip().lower() for name in first]
    if repeated := sorted({name for name in header if name and header.count(name) > 1}):
        raise whole_file(1, f"repeated column(s): {', '.join(repeated)}")
    if missing := [name for name in REQUIRED if name not in header]:
        hint = " (separate columns with commas, not semicolons)" if ";" in ",".join(first) else ""
        raise whole_file(1, f"missing column(s): {', '.join(missing)}{hint}")
    return header


def _shape_problem(header: list[str], values: list[str]) -> str | None:
    """A row with cells the header does not name, or without a required one, is misquoted
    (an unquoted comma in a name), not a row to guess at."""
    if len(values) == len(header):
        return None  # nearly every row: nothing extra, nothing short
    extra = values[len(header) :]
    short = [name for name in REQUIRED if header.index(name) >= len(values)]
    if any(value.strip() for value in extra) or short:
        return (
            f"{len(values)} values, but the header has {len(header)} columns "
            "(put a value that contains a comma in double quotes)"
        )
    return None


class Records:
    """A file's rows, each as the columns ``wanted`` that its header has (trimmed; a missing
    trailing cell is empty) with the line it starts on (a quoted value may span lines).

    Iterate once; misshapen rows are raised together, as ImportRejected, after the last row.
    """

    def __init__(self, source: Source, wanted: Iterable[str] | None = None) -> None:
        if (size := _size(source)) is not None and size > MAX_BYTES:
            raise whole_file(1, _TOO_LARGE)
        self._text = _Text(source, counted=size is None)
        self._reader = csv.reader(self._text.pieces())
        self.header = self._read_header()
        names = [name for name in self.header if name] if wanted is None else wanted
        self.columns = tuple(name for name in names if name in self.header)
        places = [self.header.index(name) for name in self.columns]
        # One C call per row instead of a comprehension (which cost 1.8 s a 100,000 rows).
        self._pick = operator.itemgetter(*places) if len(places) > 1 else _one(places[0])

    def _read_header(self) -> list[str]:
        first = self._next()
        try:
            return _header(first)
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
        misshapen: list[RowError] = []
        width = len(self.header)
        while True:
            start = self._reader.line_num + 1
            values = self._next()
            if values is None:
                break
            if not "".join(values).strip():
                continue  # a blank row
            if problem := _shape_problem(self.header, values):
                misshapen.append(RowError(start, problem))
                continue
            if len(values) < width:
                values += [""] * (width - len(values))
            yield start, list(map(str.strip, self._pick(values)))
        if misshapen:
            raise ImportRejected(misshapen)


def _one(place: int) -> Callable[[list[str]], tuple[str, ...]]:
    return lambda values: (values[place],)


def read_rows(data: Source) -> list[tuple[int, dict[str, str]]]:
    """Every row keyed by column, each with the line it starts on; see :class:`Records`."""
    records = Records(data)
    return [(line, dict(zip(records.columns, cells, strict=True))) for line, cells in records]
