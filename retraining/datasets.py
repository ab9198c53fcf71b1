"""The schema of a training data set, read from its first bytes: a CSV/TSV header row or ARFF attributes.

Reading only the head keeps the check cheap whatever the data's size. The label is the column a
pipeline names (`Label Column`, as Studio's training experiments take it) or else the last one;
the features are the others. Data that is not UTF-8 text, or has no header, gets a reason a user
can act on, before any training job is started.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from .errors import RetrainingError

HEAD_BYTES = 256 * 1024
EXTENSIONS = (".csv", ".tsv", ".arff")


class DataError(RetrainingError):
    """The training data cannot be used as it is; the message says why and where."""


@dataclass(frozen=True)
class DataSchema:
    features: tuple[str, ...]
    label: str


def read_schema(head: bytes, name: str, label: str | None, *, complete: bool) -> DataSchema:
    """The schema from the first bytes of blob `name`; `complete` says whether `head` is the whole blob."""
    extension = next((e for e in EXTENSIONS if name.lower().endswith(e)), None)
    if extension is None:
        raise DataError(f"{name}: the training data must be {', '.join(EXTENSIONS)}")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if complete or exc.start < len(head) - 4:  # a multi-byte character cut by the read is fine
            raise DataError(
                f"{name}: not UTF-8 text (byte 0x{head[exc.start]:02x} at offset {exc.start}); "
                "save the data as UTF-8 CSV or ARFF"
            ) from None
        text = head[: exc.start].decode("utf-8-sig")
    names = _arff_names(text, name, complete) if extension == ".arff" else _csv_names(text, name, extension, complete)
    if len(names) < 2:
        raise DataError(f"{name}: found {len(names)} column(s); the data needs at least one feature and a label")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(f"{name}: column names appear twice: {duplicates[:5]}")
    chosen = label or names[-1]
    if chosen not in names:
        raise DataError(f"{name}: the label column {chosen!r} is not among the columns {names[:10]}")
    return DataSchema(tuple(n for n in names if n != chosen), chosen)


def _csv_names(text: str, name: str, extension: str, complete: bool) -> list[str]:
    lines = text.splitlines()
    if len(lines) < 2 and not complete:
        raise DataError(f"{name}: the header row is longer than {HEAD_BYTES} bytes")
    try:
        row = next(
            csv.reader(io.StringIO(lines[0] if lines else ""), delimiter="\t" if extension == ".tsv" else ","), []
        )
    except csv.Error as exc:
        raise DataError(f"{name}: the header row is not CSV ({exc})") from None
    names = [cell.strip() for cell in row]
    if not names or any(not n for n in names):
        raise DataError(f"{name}: the first row must name every column")
    return names


def _arff_names(text: str, name: str, complete: bool) -> list[str]:
    names: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        lower = line.lower()
        if lower.startswith("@attribute"):
            rest = line[len("@attribute") :].strip()
            if rest[:1] in ("'", '"') and rest.find(rest[0], 1) > 0:
                names.append(rest[1 : rest.index(rest[0], 1)])
            elif rest:
                names.append(rest.split()[0])
        elif lower.startswith("@data"):
            return names
    if complete:
        raise DataError(f"{name}: an ARFF file needs @attribute lines and a @data section")
    raise DataError(f"{name}: no @data section within the first {HEAD_BYTES} bytes")


def schema_differences(served: DataSchema, candidate: DataSchema) -> list[str]:
    """What differs between the data the served model learned from and the new data (empty: compatible)."""
    differences = []
    missing = [f for f in served.features if f not in candidate.features]
    added = [f for f in candidate.features if f not in served.features]
    if missing:
        differences.append(f"missing feature columns {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    if added:
        differences.append(f"new feature columns {added[:10]}{' ...' if len(added) > 10 else ''}")
    if served.label != candidate.label:
        differences.append(f"label column {candidate.label!r} instead of {served.label!r}")
    return differences


def sample_rows(head: bytes, name: str, features: tuple[str, ...], limit: int) -> list[list[float | str]]:
    """Up to `limit` rows of the feature columns from the first bytes of a CSV/TSV/ARFF blob (for smoke tests).

    Numbers become floats, anything else stays text; rows with missing values (`?` or empty) are skipped.
    """
    text = head.decode("utf-8-sig", errors="ignore")
    lines = text.splitlines()
    if name.lower().endswith(".arff"):
        names, data_at = [], None
        for index, raw in enumerate(lines):
            lower = raw.strip().lower()
            if lower.startswith("@attribute"):
                rest = raw.strip()[len("@attribute") :].strip()
                quoted = rest[:1] in ("'", '"') and rest.find(rest[0], 1) > 0
                names.append(rest[1 : rest.index(rest[0], 1)] if quoted else rest.split()[0])
            elif lower.startswith("@data"):
                data_at = index + 1
                break
        body = [line for line in lines[data_at or len(lines) :] if line.strip() and not line.lstrip().startswith("%")]
        delimiter = ","
    else:
        delimiter = "\t" if name.lower().endswith(".tsv") else ","
        names = [
            cell.strip() for cell in next(csv.reader(io.StringIO(lines[0] if lines else ""), delimiter=delimiter), [])
        ]
        body = lines[1:]
    positions = [names.index(f) for f in features if f in names]
    if len(positions) != len(features):
        raise DataError(f"{name}: the data lacks feature columns the model needs")
    rows: list[list[float | str]] = []
    for cells in csv.reader(io.StringIO("\n".join(body[:-1] if len(body) > 1 else body)), delimiter=delimiter):
        if len(cells) != len(names):
            continue
        picked = [cells[p].strip() for p in positions]
        if any(v in ("", "?") for v in picked):
            continue
        rows.append([_number(v) for v in picked])
        if len(rows) >= limit:
            break
    if not rows:
        raise DataError(f"{name}: no complete row of data within the first {len(head)} bytes to test the model with")
    return rows


def _number(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value.strip("'\"")
