"""New data against the champion's profile: PSI, KS, the label's shift, growth in rows and schema differences.

- **PSI** (population stability index), per column on the reference's bins: numeric columns on its
  decile edges, categorical columns on its kept categories plus `other`; a `missing` bin always
  counts (a column that starts arriving empty has drifted). `PSI = sum((q - p) * ln(q / p))` over the
  bins, with p the reference's share and q the new data's, each raised to `EPSILON` (1e-4) when
  smaller, so an empty bin costs a large but finite amount. Rules of thumb: < 0.1 stable, 0.1 to
  0.25 a moderate shift, > 0.25 a large one.
- **KS** (two-sample Kolmogorov-Smirnov statistic, `sup |F_ref - F_new|`), per numeric column over
  the present values. The new data is counted exactly at each reference knot and just below it, and
  the reference's CDF there is in its profile, so the statistic is evaluated exactly at those
  points; between two knots it can hide at most the reference's share strictly between them
  (about 1 / KS_POINTS = 0.02): the result is at most that much below the exact two-sample
  statistic, never above it (exact data only; a sampled reference adds its sampling error).
- **Label shift**: the total variation distance `0.5 * sum(|q - p|)` of the label's distribution on
  the same bins (categories, or deciles for a numeric label, plus missing): the share of rows whose
  label would have to change for the distributions to match, in [0, 1]. It reads directly as a
  fraction, which a label threshold is easier to choose in than PSI; the label's PSI is reported too.
- **Growth**: `rows / reference rows - 1` (0.25: a quarter more rows than the champion learned from;
  negative when the data shrank).
- **Schema**: feature columns missing or added, a label column of another name, a column whose kind
  (numeric or categorical) changed. Those columns get no scores.

`compare(reference, Source)` streams the data (exact, and `check` also returns the data's own
profile, to keep with a model trained on it). `compare(reference, Profile)` works from two profiles
alone: the new distribution is read from the new profile's CDF knots (linear between two knots) and
its kept categories (a reference category outside them counts as other), so it is an approximation
(`exact` is false) for when the data itself is no longer at hand.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..payloads import Payload
from .profile import Accumulator, ColumnProfile, Profile, scan
from .reader import Kind, Source

EPSILON = 1e-4
TOP = 5


@dataclass(frozen=True)
class ColumnDrift(Payload):
    name: str
    kind: Kind
    psi: float
    tvd: float  # total variation distance on the same bins
    ks: float | None = None  # numeric columns with values on both sides


@dataclass(frozen=True)
class SchemaDifferences(Payload):
    missing: tuple[str, ...] = ()  # reference feature columns the new data lacks
    added: tuple[str, ...] = ()  # feature columns the reference did not have
    retyped: Mapping[str, str] = field(default_factory=dict)  # column -> "numeric -> categorical"
    label: str | None = None  # the new data's label column, when its name differs

    def __bool__(self) -> bool:
        return bool(self.missing or self.added or self.retyped or self.label)

    def messages(self) -> tuple[str, ...]:
        """Each difference as a sentence (as `datasets.schema_differences` words them)."""
        out = []
        if self.missing:
            out.append(f"missing feature columns {list(self.missing[:10])}{' ...' if len(self.missing) > 10 else ''}")
        if self.added:
            out.append(f"new feature columns {list(self.added[:10])}{' ...' if len(self.added) > 10 else ''}")
        if self.label is not None:
            out.append(f"label column {self.label!r} instead of the reference's")
        out.extend(f"column {name!r} changed kind: {change}" for name, change in self.retyped.items())
        return tuple(out)


@dataclass(frozen=True)
class DriftReport(Payload):
    reference_rows: int
    rows: int
    growth: float  # rows / reference_rows - 1
    features: tuple[ColumnDrift, ...]  # the most drifting first: PSI, then KS, descending
    label: ColumnDrift | None  # None when the label changed name or kind
    label_shift: float | None  # the label's total variation distance
    schema: SchemaDifferences
    top: tuple[str, ...]  # the first TOP features' names
    exact: bool = True  # False: computed from two profiles

    @property
    def psi(self) -> float:
        """The largest feature PSI (0 without features)."""
        return max((f.psi for f in self.features), default=0.0)

    @property
    def ks(self) -> float | None:
        return max((f.ks for f in self.features if f.ks is not None), default=None)

    def feature(self, name: str) -> ColumnDrift | None:
        return next((f for f in self.features if f.name == name), None)


def compare(reference: Profile, new: Profile | Source) -> DriftReport:
    """How far `new` (a profile, or data to stream) has moved from `reference`."""
    if isinstance(new, Profile):
        return _report(reference, new, lambda name: _from_profile(new.column(name)), exact=False)
    return check(reference, new)[0]


def check(reference: Profile, source: Source) -> tuple[DriftReport, Profile]:
    """Stream `source` once: its drift from `reference`, and its own profile (the reference for a model trained on it)."""
    profile, accumulators, _ = scan(source, reference)
    return _report(reference, profile, lambda name: _from_accumulator(accumulators[name]), exact=True), profile


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """PSI of the shares `actual` against `expected` (same bins), each share at least EPSILON."""
    total = 0.0
    for p, q in zip(expected, actual, strict=True):
        p, q = max(p, EPSILON), max(q, EPSILON)
        total += (q - p) * math.log(q / p)
    return total


def tvd(expected: Sequence[float], actual: Sequence[float]) -> float:
    return 0.5 * sum(abs(p - q) for p, q in zip(expected, actual, strict=True))


@dataclass(frozen=True)
class _Side:
    """The new data's column as the comparison reads it: counts at points, or per category."""

    kind: Kind
    count: int
    missing: int
    at_most: Callable[[float], float]  # values <= x
    less: Callable[[float], float]  # values < x
    categories: Callable[[str], float]


def _from_accumulator(a: Accumulator) -> _Side:
    at_most = dict(zip(a.points, a.at_most, strict=True))
    less = dict(zip(a.points, a.less, strict=True))
    counts = a.counts
    return _Side(
        a.kind or Kind.CATEGORICAL,
        a.count,
        a.missing,
        lambda x: at_most[x],
        lambda x: less[x],
        lambda v: counts.get(v, 0),
    )


def _from_profile(c: ColumnProfile | None) -> _Side:
    assert c is not None
    knots, cdf, below = c.knots, c.cdf, c.below

    def at_most(x: float) -> float:
        """Values <= x: exact at a knot, interpolated linearly between two (the values are taken as spread evenly)."""
        i = bisect_right(knots, x) - 1  # the last knot <= x
        if i < 0:
            return 0.0
        if knots[i] == x or i + 1 == len(knots):
            return c.count * cdf[i]
        share = (x - knots[i]) / (knots[i + 1] - knots[i])
        return c.count * (cdf[i] + share * (below[i + 1] - cdf[i]))

    def less(x: float) -> float:
        i = bisect_right(knots, x) - 1
        if i >= 0 and knots[i] == x:
            return c.count * below[i]
        return at_most(x)

    return _Side(c.kind, c.count, c.missing, at_most, less, lambda v: float(c.categories.get(v, 0)))


def _report(reference: Profile, new: Profile, side: Callable[[str], _Side], *, exact: bool) -> DriftReport:
    ref_features = {f.name: f for f in reference.features}
    new_features = {f.name: f for f in new.features}
    retyped: dict[str, str] = {}
    drifts = []
    for name, ref in ref_features.items():
        found = new_features.get(name)
        if found is None:
            continue
        if found.kind is not ref.kind:
            retyped[name] = f"{ref.kind} -> {found.kind}"
            continue
        drifts.append(_drift(ref, side(name)))
    label = None
    label_name = None
    if new.label.name != reference.label.name:
        label_name = new.label.name
    elif new.label.kind is not reference.label.kind:
        retyped[new.label.name] = f"{reference.label.kind} -> {new.label.kind}"
    else:
        label = _drift(reference.label, side(new.label.name))
    drifts.sort(key=lambda d: (-d.psi, -(d.ks or 0.0), d.name))
    schema = SchemaDifferences(
        missing=tuple(n for n in ref_features if n not in new_features),
        added=tuple(n for n in new_features if n not in ref_features),
        retyped=retyped,
        label=label_name,
    )
    return DriftReport(
        reference_rows=reference.rows,
        rows=new.rows,
        growth=new.rows / reference.rows - 1,
        features=tuple(drifts),
        label=label,
        label_shift=label.tvd if label else None,
        schema=schema,
        top=tuple(d.name for d in drifts[:TOP]),
        exact=exact,
    )


def _drift(ref: ColumnProfile, new: _Side) -> ColumnDrift:
    ref_total, new_total = max(ref.rows, 1), max(new.count + new.missing, 1)
    if ref.kind is Kind.NUMERIC:
        present = ref.count / ref_total
        expected = [present * n / ref.sampled if ref.sampled else 0.0 for n in ref.counts] or [0.0]
        cumulative = [new.at_most(e) for e in ref.edges]
        counts = [b - a for a, b in zip([0.0, *cumulative], [*cumulative, float(new.count)], strict=True)]
        actual = [n / new_total for n in counts]
        ks = None
        if ref.sampled and new.count:
            ks = 0.0
            for knot, at_most, below in zip(ref.knots, ref.cdf, ref.below, strict=True):
                ks = max(
                    ks,
                    abs(new.at_most(knot) / new.count - at_most),
                    abs(new.less(knot) / new.count - below),
                )
    else:
        names = list(ref.categories)
        expected = [ref.categories[n] / ref_total for n in names] + [ref.other / ref_total]
        kept = [new.categories(n) for n in names]
        actual = [n / new_total for n in kept] + [max(0.0, new.count - sum(kept)) / new_total]
        ks = None
    expected.append(ref.missing / ref_total)
    actual.append(new.missing / new_total)
    return ColumnDrift(
        ref.name,
        ref.kind,
        round(psi(expected, actual), 6),
        round(tvd(expected, actual), 6),
        None if ks is None else round(ks, 6),
    )
