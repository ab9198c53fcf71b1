"""The profile of a data set: its schema, row count and each column's distribution, built in one streaming pass.

Numeric columns. Quantiles need the whole column, which one pass with flat memory cannot keep, so
each numeric column keeps a uniform random sample of its values (a reservoir, Li's Algorithm L, of
`SAMPLE_SIZE` values; fewer per column when the data is wide, `SAMPLE_BUDGET` in all) from which
the profile takes:

- `edges`: the `PSI_BINS`-quantile edges (deciles), the reference bins for PSI, and `counts`, the
  sample's values in each bin (`(-inf, e0]`, `(e0, e1]`, ..., `(e_last, inf)`);
- `knots`: the `KS_POINTS`-quantiles (minimum and maximum included) with `cdf` (the sample's fraction
  `<= knot`) and `below` (its fraction `< knot`), the reference CDF that KS is computed against.

Values are rounded to 6 significant digits (and fractions to 4 decimals) to keep a profile small;
the fractions are computed at the rounded values, so they stay consistent. With up to `SAMPLE_SIZE`
values the sample is the whole column and all of this is exact; beyond it, a fraction's standard
error is at most 0.5 / sqrt(SAMPLE_SIZE) = 0.005. Counts, missing values, minimum and maximum are
always exact. Non-finite numbers (`nan`, `inf`) count as missing, as do empty cells and `?`.

Categorical columns keep exact counts of up to `MAX_DISTINCT` distinct values (later new values are
counted as `other`, so memory stays flat for an id-like column); the profile keeps the
`TOP_CATEGORIES` most frequent, the rest summed in `other`.

The label is profiled like a feature. A profile is plain JSON through `to_dict`/`from_dict`.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..datasets import DataError, DataSchema
from ..errors import ConfigError
from ..payloads import Payload
from ..text import excerpt
from .reader import MISSING, Column, Kind, Reader, Source, category

PSI_BINS = 10
KS_POINTS = 50
TOP_CATEGORIES = 50
MAX_DISTINCT = 10_000
SAMPLE_SIZE = 10_000
SAMPLE_BUDGET = 2_000_000  # values kept over all numeric columns (16 MB), whatever the data's width
FORMAT = 1


@dataclass(frozen=True)
class ColumnProfile(Payload):
    """One column's distribution (numeric fields or categorical fields, by `kind`)."""

    name: str
    kind: Kind
    count: int  # values present
    missing: int  # empty, `?` or not finite
    minimum: float | None = None
    maximum: float | None = None
    sampled: int = 0  # values in the sample `counts` and `cdf` come from
    edges: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    knots: tuple[float, ...] = ()
    cdf: tuple[float, ...] = ()
    below: tuple[float, ...] = ()
    categories: Mapping[str, int] = field(default_factory=dict)  # most frequent first
    other: int = 0

    def __post_init__(self) -> None:
        where = f"column profile {excerpt(self.name)}"
        if self.count < 0 or self.missing < 0 or self.other < 0 or self.sampled < 0:
            raise ConfigError(f"{where}: negative counts")
        if self.kind is Kind.NUMERIC:
            if self.sampled and len(self.counts) != len(self.edges) + 1:
                raise ConfigError(f"{where}: {len(self.counts)} counts for {len(self.edges)} edges")
            if not (len(self.knots) == len(self.cdf) == len(self.below)):
                raise ConfigError(f"{where}: knots, cdf and below differ in length")
            if list(self.edges) != sorted(set(self.edges)) or list(self.knots) != sorted(set(self.knots)):
                raise ConfigError(f"{where}: edges and knots must increase")
            if self.sampled and sum(self.counts) != self.sampled:
                raise ConfigError(f"{where}: the counts do not add up to the {self.sampled} values sampled")

    @property
    def rows(self) -> int:
        return self.count + self.missing


@dataclass(frozen=True)
class Profile(Payload):
    """The profile of a training data set; `features` in the data's column order."""

    rows: int
    features: tuple[ColumnProfile, ...]
    label: ColumnProfile
    format: int = FORMAT

    def __post_init__(self) -> None:
        if self.rows < 1:
            raise ConfigError("profile: a profile needs at least one row")
        if self.format != FORMAT:
            raise ConfigError(f"profile: format {self.format} is not {FORMAT}; build the profile again")

    @property
    def schema(self) -> DataSchema:
        return DataSchema(tuple(f.name for f in self.features), self.label.name)

    @property
    def columns(self) -> tuple[ColumnProfile, ...]:
        return (*self.features, self.label)

    def column(self, name: str) -> ColumnProfile | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def numeric(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.kind is Kind.NUMERIC)

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.kind is Kind.CATEGORICAL)


def build_profile(source: Source) -> Profile:
    """The profile of the data in `source`, in one pass with flat memory."""
    return scan(source, None)[0]


class RowSampler:
    """Which rows enter a uniform random sample of `size` rows (Li's Algorithm L), block by block.

    One sampler serves every column (the sample is of rows, each column keeping its own values of
    them), so the random draws cost once per kept row, not once per value. Seeded: the same data
    gives the same profile, however its bytes were chunked.
    """

    def __init__(self, size: int, seed: str = "drift") -> None:
        self.size = size
        self.seen = 0
        self._random = random.Random(seed)
        self._w = 1.0
        self._next = size - 1  # the last row kept; the next is drawn from here
        self._skip()

    def _skip(self) -> None:
        draw = self._random.random
        self._w *= math.exp(math.log(1.0 - draw()) / self.size)
        gap = 0 if self._w >= 1.0 else math.floor(math.log(1.0 - draw()) / math.log1p(-self._w))
        self._next += gap + 1

    def picks(self, rows: int) -> list[tuple[int, int]]:
        """(slot in the sample, row in the block) for the next `rows` rows."""
        start, end = self.seen, self.seen + rows
        out = [(start + i, i) for i in range(max(0, min(end, self.size) - start))]
        slot = self._random.randrange
        while self._next < end:
            out.append((slot(self.size), self._next - start))
            self._skip()
        self.seen = end
        return out


class Accumulator:
    """One column's statistics over the blocks of a pass; optionally counts on a reference column's points."""

    def __init__(self, source: str, column: Column, sample_size: int, reference: ColumnProfile | None) -> None:
        self.source = source
        self.name = column.name
        self.kind = column.kind
        self.inferred = column.kind is None
        self.declared = column.values
        if self.kind is None and reference is not None and reference.kind is Kind.CATEGORICAL:
            self.kind = Kind.CATEGORICAL  # read as the reference was: numeric-looking codes stay categories
        self.count = 0
        self.missing = 0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.sample = array("d", [math.nan]) * sample_size  # NaN: no row yet, or the value is missing
        self.points: list[float] = (
            sorted(set(reference.edges) | set(reference.knots))
            if reference is not None and reference.kind is Kind.NUMERIC
            else []
        )
        self.at_most = [0] * len(self.points)  # values <= each point
        self.less = [0] * len(self.points)  # values < each point
        self.counts: dict[str, int] = (
            dict.fromkeys(reference.categories, 0)
            if reference is not None and reference.kind is Kind.CATEGORICAL
            else {}
        )
        self.other = 0

    def add(self, values: tuple[str, ...], lines: list[int], picks: list[tuple[int, int]]) -> None:
        if self.kind is None:
            self.kind = self._infer(values)
            if self.kind is None:
                self.missing += len(values)
                return
        if self.kind is Kind.NUMERIC:
            self._numbers(values, lines, picks)
        else:
            self._categories(values, lines)

    @staticmethod
    def _infer(values: tuple[str, ...]) -> Kind | None:
        present = False
        for text in values:
            try:
                float(text)
            except ValueError:
                if text.strip() not in MISSING:
                    return Kind.CATEGORICAL
                continue
            present = True
        return Kind.NUMERIC if present else None

    def _numbers(self, values: tuple[str, ...], lines: list[int], picks: list[tuple[int, int]]) -> None:
        try:
            numbers = list(map(float, values))
            clean = math.isfinite(sum(numbers))
        except ValueError:
            clean = False
        if not clean:
            numbers = [self._number(text, lines[index]) for index, text in enumerate(values)]
        sample = self.sample
        for slot, row in picks:
            sample[slot] = numbers[row]
        if not clean:
            numbers = [n for n in numbers if n == n]  # NaN: missing
            self.missing += len(values) - len(numbers)
            if not numbers:
                return
        self.count += len(numbers)
        if self.points:
            numbers.sort()
            self.minimum = min(self.minimum, numbers[0])
            self.maximum = max(self.maximum, numbers[-1])
            for index, point in enumerate(self.points):
                self.at_most[index] += bisect_right(numbers, point)
                self.less[index] += bisect_left(numbers, point)
        else:
            self.minimum = min(self.minimum, min(numbers))
            self.maximum = max(self.maximum, max(numbers))

    def _number(self, text: str, line: int) -> float:
        """A cell of a numeric column, NaN when missing (empty, `?` or not finite)."""
        try:
            number = float(text)
        except ValueError:
            if text.strip() in MISSING:
                return math.nan
            raise DataError(
                f"{self.source}: line {line}, column {excerpt(self.name)}: {excerpt(text)} is not a number"
                + (
                    ", though the column's first values are numbers (mark missing values with an empty cell or '?')"
                    if self.inferred
                    else " (the attribute is numeric)"
                )
            ) from None
        return number if math.isfinite(number) else math.nan

    def _categories(self, values: tuple[str, ...], lines: list[int]) -> None:
        counts, declared = self.counts, self.declared
        for text, number in Counter(values).items():
            value = category(text)
            if value in MISSING:
                self.missing += number
                continue
            if declared is not None and value not in declared:
                raise DataError(
                    f"{self.source}: line {lines[values.index(text)]}, column {excerpt(self.name)}: "
                    f"{excerpt(value)} is not one of the attribute's nominal values"
                )
            self.count += number
            if value in counts:
                counts[value] += number
            elif len(counts) < MAX_DISTINCT:
                counts[value] = number
            else:
                self.other += number

    def profile(self, default_kind: Kind | None) -> ColumnProfile:
        kind = self.kind or default_kind or Kind.CATEGORICAL
        if kind is Kind.CATEGORICAL:
            ranked = sorted(((n, v) for v, n in self.counts.items() if n), key=lambda p: (-p[0], p[1]))
            top = ranked[:TOP_CATEGORIES]
            return ColumnProfile(
                self.name,
                kind,
                self.count,
                self.missing,
                categories={v: n for n, v in top},
                other=self.other + sum(n for n, _ in ranked[TOP_CATEGORIES:]),
            )
        sample = sorted(v for v in self.sample if v == v)
        if not sample:
            return ColumnProfile(self.name, kind, 0, self.missing)
        top_value = sample[-1]
        edges = _distinct(_round(_quantile(sample, i / PSI_BINS)) for i in range(1, PSI_BINS))
        edges = tuple(e for e in edges if e < top_value)
        positions = [bisect_right(sample, e) for e in edges]
        counts = tuple(b - a for a, b in zip([0, *positions], [*positions, len(sample)], strict=True))
        knots = _distinct(_round(_quantile(sample, i / KS_POINTS)) for i in range(KS_POINTS + 1))
        return ColumnProfile(
            self.name,
            kind,
            self.count,
            self.missing,
            minimum=self.minimum,
            maximum=self.maximum,
            sampled=len(sample),
            edges=edges,
            counts=counts,
            knots=knots,
            cdf=tuple(round(bisect_right(sample, k) / len(sample), 4) for k in knots),
            below=tuple(round(bisect_left(sample, k) / len(sample), 4) for k in knots),
        )


def _quantile(ordered: list[float], p: float) -> float:
    """The inverted-CDF quantile (numpy's method='inverted_cdf'): the smallest value with a fraction >= p at or below."""
    return ordered[max(0, math.ceil(p * len(ordered) - 1e-9) - 1)]


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _distinct(values: Iterable[float]) -> tuple[float, ...]:
    return tuple(sorted(set(values)))


def scan(source: Source, reference: Profile | None) -> tuple[Profile, dict[str, Accumulator], Reader]:
    """One pass over `source`: its profile, and each column's accumulator (with counts on the reference's points)."""
    reader = Reader(source)
    references: Mapping[str, ColumnProfile] = {c.name: c for c in reference.columns} if reference else {}
    sample_size = max(1000, min(SAMPLE_SIZE, SAMPLE_BUDGET // len(reader.columns)))
    accumulators = [Accumulator(source.name, c, sample_size, references.get(c.name)) for c in reader.columns]
    sampler = RowSampler(sample_size)
    rows = 0
    for block in reader.blocks():
        rows += len(block.rows)
        lines, picks = block.lines, sampler.picks(len(block.rows))
        for accumulator, values in zip(accumulators, zip(*block.rows, strict=True), strict=True):
            accumulator.add(values, lines, picks)
    if rows == 0:
        raise DataError(f"{source.name}: no rows of data after the header")
    columns = []
    for accumulator in accumulators:
        known = references.get(accumulator.name)
        columns.append(accumulator.profile(known.kind if known else None))
    label = columns[reader.label]
    features = tuple(c for i, c in enumerate(columns) if i != reader.label)
    return Profile(rows, features, label), {a.name: a for a in accumulators}, reader
