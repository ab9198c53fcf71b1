"""A streaming reader of CSV, TSV and ARFF data from an iterable of byte chunks (as a blob download yields them).

Memory is flat in the data's size: bytes are decoded incrementally, split into physical lines and
parsed by the stdlib `csv` module, and rows are handed on in blocks of `BLOCK_ROWS` (the blocks do not
depend on how the bytes were chunked). The label is the column the pipeline names or else the last,
as in `retraining.datasets`. Malformed data raises `DataError` naming the blob, the line and the column.

ARFF: `@attribute` types give each column's kind (numeric/real/integer: numeric; `{...}` nominal,
string and date: categorical; relational is refused); data rows are comma-separated with `'`
quotes (a value in `"` keeps them, stripped for categories); `%` comments and blank lines are
skipped; sparse rows (`{0 x, 3 y}`) are refused. CSV/TSV columns have no declared kind: the first
block in which a column has a value decides (numeric when every value there is a number).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from ..datasets import EXTENSIONS, DataError
from ..text import excerpt

BLOCK_ROWS = 2048
MISSING = frozenset({"", "?"})  # as `datasets.sample_rows` reads them; non-finite numbers count as missing too


class Kind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


@dataclass(frozen=True)
class Source:
    """Data to read: its byte chunks, the blob's name (its extension picks the format) and the label column."""

    chunks: Iterable[bytes]
    name: str
    label: str | None = None


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind | None  # None: CSV/TSV, decided by the values
    values: frozenset[str] | None = None  # an ARFF nominal attribute's declared values


@dataclass(frozen=True)
class Block:
    rows: list[list[str]]
    lines: list[int]  # each row's (last) physical line, 1-based


class _Lines:
    """The physical lines of the decoded chunks (newline kept), counting them in `number`."""

    def __init__(self, chunks: Iterable[bytes], name: str) -> None:
        self.name = name
        self.number = 0
        self.bytes = 0
        self._decoded_lines = 0
        self._iterator = self._lines(chunks)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._iterator)
        self.number += 1
        return line

    def _lines(self, chunks: Iterable[bytes]) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        pending = ""
        for chunk in chunks:
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise self._not_utf8(chunk, exc) from None
            self.bytes += len(chunk)
            if not text:
                continue
            self._decoded_lines += text.count("\n")
            parts = (pending + text).split("\n")
            pending = parts.pop()
            for part in parts:
                yield part + "\n"
        try:
            rest = decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise self._not_utf8(b"", exc) from None
        pending += rest
        if pending:
            yield pending

    def _not_utf8(self, chunk: bytes, exc: UnicodeDecodeError) -> DataError:
        buffered = len(exc.object) - len(chunk)  # bytes the decoder held back from earlier chunks
        offset = max(0, self.bytes - buffered + exc.start)
        line = self._decoded_lines + exc.object[: exc.start].count(b"\n") + 1
        return DataError(
            f"{self.name}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} near offset {offset}, line {line}); "
            "save the data as UTF-8 CSV or ARFF"
        )


class _DataLines:
    """ARFF data lines: `_Lines` without blank lines and `%` comments; `number` is the physical line."""

    def __init__(self, lines: _Lines) -> None:
        self._lines = lines

    @property
    def number(self) -> int:
        return self._lines.number

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            stripped = line.lstrip()
            if stripped and not stripped.startswith("%"):
                if stripped.startswith("{"):
                    raise DataError(f"{self._lines.name}: line {self.number}: sparse ARFF rows are not supported")
                yield line


class Reader:
    """Reads the header on construction (`columns`, `label`), then `blocks()` yields the rows."""

    def __init__(self, source: Source, block_rows: int = BLOCK_ROWS) -> None:
        self.name = source.name
        self.block_rows = block_rows
        extension = next((e for e in EXTENSIONS if source.name.lower().endswith(e)), None)
        if extension is None:
            raise DataError(f"{source.name}: the training data must be {', '.join(EXTENSIONS)}")
        self._lines = _Lines(source.chunks, source.name)
        self._numbered: _Lines | _DataLines
        if extension == ".arff":
            self.columns = self._arff_header()
            self._numbered = _DataLines(self._lines)
            self._rows = csv.reader(
                self._numbered, delimiter=",", quotechar="'", escapechar="\\", skipinitialspace=True
            )
        else:
            self._numbered = self._lines
            self._rows = csv.reader(self._lines, delimiter="\t" if extension == ".tsv" else ",")
            self.columns = self._csv_header()
        names = [c.name for c in self.columns]
        if len(names) < 2:
            raise DataError(
                f"{self.name}: found {len(names)} column(s); the data needs at least one feature and a label"
            )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DataError(f"{self.name}: column names appear twice: {duplicates[:5]}")
        chosen = source.label or names[-1]
        if chosen not in names:
            raise DataError(f"{self.name}: the label column {chosen!r} is not among the columns {names[:10]}")
        self.label = names.index(chosen)

    def _csv_header(self) -> tuple[Column, ...]:
        try:
            row = next((r for r in self._rows if r), [])
        except csv.Error as exc:
            raise DataError(f"{self.name}: line {self._lines.number}: the header row is not CSV ({exc})") from None
        names = [cell.strip() for cell in row]
        if not names or any(not n for n in names):
            raise DataError(f"{self.name}: the first row must name every column")
        return tuple(Column(n, None) for n in names)

    def _arff_header(self) -> tuple[Column, ...]:
        columns: list[Column] = []
        for raw in self._lines:
            line = raw.strip()
            lower = line.lower()
            if lower.startswith("@data"):
                return tuple(columns)
            if not lower.startswith("@attribute"):
                continue
            rest = line[len("@attribute") :].strip()
            if rest[:1] in ("'", '"') and rest.find(rest[0], 1) > 0:
                end = rest.index(rest[0], 1)
                name, kind = rest[1:end], rest[end + 1 :].strip()
            else:
                name, _, kind = rest.partition(" ")
                if "\t" in name:
                    name, _, tail = name.partition("\t")
                    kind = tail + " " + kind
                kind = kind.strip()
            columns.append(self._arff_column(name, kind))
        raise DataError(f"{self.name}: an ARFF file needs @attribute lines and a @data section")

    def _arff_column(self, name: str, kind: str) -> Column:
        where = f"{self.name}: line {self._lines.number}: attribute {excerpt(name)}"
        lower = kind.lower()
        if lower.startswith("{"):
            if not kind.endswith("}"):
                raise DataError(f"{where}: a nominal type must end with '}}'")
            try:
                cells = next(csv.reader([kind[1:-1]], quotechar="'", skipinitialspace=True), [])
            except csv.Error as exc:
                raise DataError(f"{where}: cannot read its nominal values ({exc})") from None
            return Column(name, Kind.CATEGORICAL, frozenset(category(c) for c in cells))
        word = lower.split()[0] if lower.split() else ""
        if word in ("numeric", "real", "integer"):
            return Column(name, Kind.NUMERIC)
        if word in ("string", "date"):
            return Column(name, Kind.CATEGORICAL)
        if word == "relational":
            raise DataError(f"{where}: relational attributes are not supported")
        raise DataError(
            f"{where}: unknown type {excerpt(kind)}; expected numeric, real, integer, {{...}}, string or date"
        )

    def blocks(self) -> Iterator[Block]:
        width = len(self.columns)
        rows: list[list[str]] = []
        lines: list[int] = []
        numbered = self._numbered
        try:
            for row in self._rows:
                if len(row) != width:
                    if not row:
                        continue  # a blank line
                    raise self._wrong_width(row, numbered.number)
                rows.append(row)
                lines.append(numbered.number)
                if len(rows) == self.block_rows:
                    yield Block(rows, lines)
                    rows, lines = [], []
        except csv.Error as exc:
            raise DataError(f"{self.name}: line {numbered.number}: not CSV ({exc})") from None
        if rows:
            yield Block(rows, lines)

    def _wrong_width(self, row: list[str], line: int) -> DataError:
        return DataError(
            f"{self.name}: line {line}: {len(row)} value(s), but the header has {len(self.columns)} columns"
        )


def category(value: str) -> str:
    """A categorical value as counted: surrounding spaces and quotes removed."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
        value = value[1:-1]
    return value
