"""Drift-aware retraining's core: the streaming reader, profiles, PSI/KS/label shift against reference
implementations on data with known shifts, the `retrainWhen` parser and `decide`."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from retraining.datasets import DataError
from retraining.drift import (
    EPSILON,
    KS_POINTS,
    DriftReport,
    Kind,
    Profile,
    RetrainWhen,
    SchemaChangedError,
    Source,
    build_profile,
    check,
    compare,
    decide,
    parse_retrain_when,
)
from retraining.drift import profile as profile_module
from retraining.errors import ConfigError, RetrainingError

ROOT = Path(__file__).resolve().parents[2]
COLOURS = ("red", "green", "blue", "grün")


def table(
    rows: int,
    *,
    seed: int = 1,
    shift: float = 0.0,
    yes: float = 0.3,
    colours: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1),
    missing: float = 0.0,
) -> tuple[list[list[str]], dict[str, list[float]]]:
    """Rows of (age: normal, income: uniform with `missing` cells empty, colour, label) and the numeric values."""
    rnd = random.Random(seed)
    out, values = [], {"age": [], "income": []}
    for _ in range(rows):
        age = round(rnd.gauss(40 + shift * 10, 10), 3)
        income = round(rnd.uniform(0, 100), 2)
        values["age"].append(age)
        cell = "" if rnd.random() < missing else str(income)
        if cell:
            values["income"].append(income)
        colour = rnd.choices(COLOURS, colours)[0]
        out.append([str(age), cell, colour, "yes" if rnd.random() < yes else "no"])
    return out, values


def csv_bytes(
    rows: list[list[str]], header: tuple[str, ...] = ("age", "income", "colour", "label"), sep: str = ","
) -> bytes:
    return "\n".join([sep.join(header), *(sep.join(r) for r in rows)]).encode() + b"\n"


def source(data: bytes, name: str = "data.csv", chunk: int = 1 << 20, label: str | None = None) -> Source:
    return Source((data[i : i + chunk] for i in range(0, len(data), chunk)), name, label)


def profile_of(data: bytes, name: str = "data.csv", chunk: int = 1 << 20) -> Profile:
    return build_profile(source(data, name, chunk))


# --- reference implementations ---------------------------------------------------------------------


def ks_reference(a: list[float], b: list[float]) -> float:
    try:
        from scipy.stats import ks_2samp
    except ImportError:  # the textbook statistic: sup |F_a - F_b| over every observed value
        xs, ys = sorted(a), sorted(b)
        from bisect import bisect_right

        return max(abs(bisect_right(xs, v) / len(xs) - bisect_right(ys, v) / len(ys)) for v in xs + ys)
    return float(ks_2samp(a, b).statistic)


def decile_edges(values: list[float]) -> list[float]:
    """Inverted-CDF deciles, rounded as profiles keep them, without the maximum."""
    ordered = sorted(values)
    edges = sorted({float(f"{ordered[max(0, math.ceil(i * len(ordered) / 10) - 1)]:.6g}") for i in range(1, 10)})
    return [e for e in edges if e < ordered[-1]]


def textbook_psi(expected: list[float], actual: list[float]) -> float:
    return sum(
        (max(q, EPSILON) - max(p, EPSILON)) * math.log(max(q, EPSILON) / max(p, EPSILON))
        for p, q in zip(expected, actual, strict=True)
    )


def shares(values: list[float], edges: list[float], rows: int) -> list[float]:
    """Share of `rows` in each bin (-inf, e0], (e0, e1], ..., (e_last, inf), then the missing share."""
    from bisect import bisect_left

    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[bisect_left(edges, v)] += 1
    return [c / rows for c in counts] + [(rows - len(values)) / rows]


# --- statistics against the references -------------------------------------------------------------


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.3, 1.0])
def test_ks_matches_scipy_within_the_knot_resolution(shift: float) -> None:
    ref_rows, ref_values = table(4000, seed=1)
    new_rows, new_values = table(3000, seed=2, shift=shift)
    report, _ = check(profile_of(csv_bytes(ref_rows)), source(csv_bytes(new_rows)))
    expected = ks_reference(ref_values["age"], new_values["age"])
    ks = report.feature("age").ks  # type: ignore[union-attr]
    assert ks is not None
    # evaluated exactly at the reference's knots: never above, at most one knot's share below
    assert expected - 1 / KS_POINTS - 1e-3 <= ks <= expected + 1e-3


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_psi_matches_the_textbook_on_the_reference_deciles(shift: float) -> None:
    ref_rows, ref_values = table(4000, seed=1, missing=0.02)
    new_rows, new_values = table(3000, seed=2, shift=shift, missing=0.1)
    reference = profile_of(csv_bytes(ref_rows))
    report, _ = check(reference, source(csv_bytes(new_rows)))
    for column in ("age", "income"):
        edges = decile_edges(ref_values[column])
        assert list(reference.column(column).edges) == edges  # type: ignore[union-attr]
        expected = textbook_psi(shares(ref_values[column], edges, 4000), shares(new_values[column], edges, 3000))
        assert report.feature(column).psi == pytest.approx(expected, abs=1e-5)  # type: ignore[union-attr]


def test_no_shift_scores_small_and_a_shifted_feature_is_named_first() -> None:
    reference = profile_of(csv_bytes(table(5000, seed=1)[0]))
    same, _ = check(reference, source(csv_bytes(table(5000, seed=2)[0])))
    assert same.psi < 0.02 and (same.ks or 0) < 0.05 and (same.label_shift or 0) < 0.03
    assert same.growth == 0.0 and not same.schema
    moved, _ = check(reference, source(csv_bytes(table(5000, seed=2, shift=0.5)[0])))
    assert moved.top[0] == "age" and moved.features[0].name == "age"
    assert moved.features[0].psi > 0.2 and (moved.features[0].ks or 0) > 0.15
    assert moved.feature("income").psi < 0.02  # type: ignore[union-attr]


def test_a_shifted_categorical_feature_and_a_shifted_label() -> None:
    reference = profile_of(csv_bytes(table(5000, seed=1)[0]))
    colours, _ = check(reference, source(csv_bytes(table(5000, seed=2, colours=(0.1, 0.2, 0.3, 0.4))[0])))
    assert colours.top[0] == "colour" and colours.features[0].psi > 0.5 and colours.features[0].ks is None
    label, _ = check(reference, source(csv_bytes(table(5000, seed=2, yes=0.6)[0])))
    assert label.label_shift is not None and label.label_shift == pytest.approx(0.3, abs=0.03)
    assert label.psi < 0.02  # the features did not move
    # the textbook total variation distance on the label's categories
    ref_yes = reference.label.categories["yes"] / reference.rows
    new_yes = sum(1 for r in table(5000, seed=2, yes=0.6)[0] if r[3] == "yes") / 5000
    assert label.label_shift == pytest.approx(abs(new_yes - ref_yes), abs=1e-5)


def test_a_numeric_label_is_binned_and_growth_is_measured() -> None:
    rows, _ = table(3000, seed=1)
    numeric_label = [[r[2], r[3], r[1] or "0", r[0]] for r in rows]  # age last: the label
    header = ("colour", "yes", "income", "age")
    reference = profile_of(csv_bytes(numeric_label, header))
    assert reference.label.kind is Kind.NUMERIC and reference.label.edges
    more, _ = table(4500, seed=2, shift=1.0)
    report, _ = check(reference, source(csv_bytes([[r[2], r[3], r[1] or "0", r[0]] for r in more], header)))
    assert report.growth == pytest.approx(0.5) and report.rows == 4500 and report.reference_rows == 3000
    assert report.label is not None and report.label.ks is not None and report.label.ks > 0.3
    assert report.label_shift is not None and report.label_shift > 0.3


def test_missing_values_are_a_bin_of_their_own() -> None:
    reference = profile_of(csv_bytes(table(4000, seed=1)[0]))
    assert reference.column("income").missing == 0  # type: ignore[union-attr]
    report, new = check(reference, source(csv_bytes(table(4000, seed=2, missing=0.3)[0])))
    assert new.column("income").missing == pytest.approx(1200, rel=0.1)  # type: ignore[union-attr]
    assert report.top[0] == "income" and report.features[0].psi > 1  # 30% in a bin the reference left empty
    assert (report.feature("income").ks or 0) < 0.05  # type: ignore[union-attr]  # KS reads the values present


def test_comparing_two_profiles_approximates_the_streamed_comparison() -> None:
    reference = profile_of(csv_bytes(table(5000, seed=1)[0]))
    data = csv_bytes(table(5000, seed=2, shift=0.4, colours=(0.3, 0.3, 0.3, 0.1))[0])
    streamed, new = check(reference, source(data))
    approx = compare(reference, new)
    assert streamed.exact and not approx.exact
    assert approx.top[:2] == streamed.top[:2]
    for drift in streamed.features:
        other = approx.feature(drift.name)
        assert other is not None and other.psi == pytest.approx(drift.psi, abs=0.02)
        if drift.ks is not None:
            assert other.ks == pytest.approx(drift.ks, abs=2 / KS_POINTS)
    assert compare(reference, source(data)) == streamed


# --- profiles -------------------------------------------------------------------------------------------


def test_a_profile_is_compact_json_that_round_trips() -> None:
    profile = profile_of(csv_bytes(table(20000, seed=1, missing=0.05)[0]))
    assert (
        profile.rows == 20000
        and profile.schema.features == ("age", "income", "colour")
        and profile.label.name == "label"
    )
    assert profile.numeric == ("age", "income") and profile.categorical == ("colour",)
    age = profile.column("age")
    assert (
        age is not None and len(age.edges) == 9 and len(age.counts) == 10 and age.sampled == profile_module.SAMPLE_SIZE
    )
    assert age.count == 20000 and age.missing == 0 and age.minimum is not None and age.minimum < 10
    assert profile.column("colour").categories == {
        "red": pytest.approx(8000, rel=0.05),
        "green": pytest.approx(6000, rel=0.05),
        "blue": pytest.approx(4000, rel=0.07),
        "grün": pytest.approx(2000, rel=0.1),
    }  # type: ignore[union-attr]
    text = json.dumps(profile.to_dict())
    assert len(text) < 8000
    assert Profile.from_dict(json.loads(text)) == profile


def test_a_corrupt_stored_profile_is_refused_with_the_field_named() -> None:
    raw = profile_of(csv_bytes(table(200)[0])).to_dict()
    raw["features"][0]["counts"] = raw["features"][0]["counts"][:-1]
    with pytest.raises(ConfigError, match="column profile 'age': 9 counts for 9 edges"):
        Profile.from_dict(raw)
    raw = profile_of(csv_bytes(table(200)[0])).to_dict()
    raw["features"][1]["kind"] = "text"
    with pytest.raises(ConfigError, match=r"profile.features\[1\].kind"):
        Profile.from_dict(raw)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_streaming_in_small_chunks_gives_the_same_profile(chunk: int) -> None:
    rows, _ = table(300 if chunk == 1 else 5000, seed=3, missing=0.1)
    data = b"\xef\xbb\xbf" + csv_bytes(rows)  # a BOM, and 'grün' split across chunks
    whole = profile_of(data)
    assert profile_of(data, chunk=chunk) == whole
    assert profile_of(data.replace(b"\n", b"\r\n"), chunk=chunk) == whole


def test_a_sampled_profile_stays_close_and_does_not_depend_on_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile_module, "SAMPLE_SIZE", 1000)
    ref_rows, ref_values = table(12000, seed=1)
    data = csv_bytes(ref_rows)
    reference = profile_of(data)
    assert reference.column("age").sampled == 1000 and reference.column("age").count == 12000  # type: ignore[union-attr]
    assert profile_of(data, chunk=999) == reference
    new_rows, new_values = table(6000, seed=2, shift=0.3)
    report, _ = check(reference, source(csv_bytes(new_rows)))
    # a sample of 1,000 adds its sampling error (about 0.04 at most, typically) to the knot resolution
    assert report.feature("age").ks == pytest.approx(ks_reference(ref_values["age"], new_values["age"]), abs=0.07)  # type: ignore[union-attr]


def test_categories_beyond_the_top_are_summed_as_other(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [[str(i % 7), f"c{i % 80:02d}", "y"] for i in range(1600)]
    profile = profile_of(csv_bytes(rows, ("n", "c", "label")))
    categories = profile.column("c")
    assert categories is not None and len(categories.categories) == 50 and categories.other == 30 * 20
    monkeypatch.setattr(profile_module, "MAX_DISTINCT", 10)
    capped = profile_of(csv_bytes(rows, ("n", "c", "label"))).column("c")
    assert capped is not None and len(capped.categories) == 10 and capped.other == 70 * 20 and capped.count == 1600


def test_tsv_and_arff_are_read_with_their_types_and_the_named_label() -> None:
    rows, _ = table(500, seed=1)
    tsv = profile_of(csv_bytes(rows, sep="\t"), "data.tsv")
    assert tsv == profile_of(csv_bytes(rows))
    arff = (
        "% a comment\n@relation people\n@attribute age numeric\n@attribute 'income (k)' real\n"
        "@attribute colour {red, green, blue, 'grün'}\n@attribute label {yes,no}\n@data\n% data follows\n\n"
        + "\n".join(",".join(r[:1] + [r[1] or "?"] + [f"'{r[2]}'" if r[2] == "grün" else r[2], r[3]]) for r in rows)
        + "\n"
    ).encode()
    profile = build_profile(source(arff, "data.arff", chunk=100, label="colour"))
    assert profile.schema.features == ("age", "income (k)", "label") and profile.label.name == "colour"
    assert profile.label.kind is Kind.CATEGORICAL and sum(profile.label.categories.values()) == 500
    assert profile.column("age") == tsv.column("age")


def test_arff_string_values_may_quote_and_escape() -> None:
    arff = (
        b"@relation r\n@attribute who string\n@attribute n integer\n@attribute l {'a b',c}\n@data\n"
        b"'O\\'Reilly, Ltd',1,'a b'\n plain , 2 ,c\n\"double\",3,c\n"
    )
    profile = build_profile(source(arff, "d.arff", chunk=5))
    assert dict(profile.column("who").categories) == {"O'Reilly, Ltd": 1, "plain": 1, "double": 1}  # type: ignore[union-attr]
    assert dict(profile.label.categories) == {"c": 2, "a b": 1} and profile.column("n").count == 3  # type: ignore[union-attr]


def test_a_column_of_numeric_codes_is_read_as_the_reference_read_it() -> None:
    reference = profile_of(
        csv_bytes([["x", str(i), "y"] for i in range(10)] + [["A", "1", "y"]], ("code", "n", "label"))
    )
    assert reference.column("code").kind is Kind.CATEGORICAL  # type: ignore[union-attr]
    report, new = check(
        reference, source(csv_bytes([[str(i % 3), str(i), "y"] for i in range(10)], ("code", "n", "label")))
    )
    assert not report.schema and new.column("code").kind is Kind.CATEGORICAL  # type: ignore[union-attr]


# --- malformed data -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"a,b,label\n1,2,x\n3,4\n", "d.csv", r"d\.csv: line 3: 2 value\(s\), but the header has 3 columns"),
        (b"a,b,label\n1,2,x\n3,\xff,y\n", "d.csv", r"d\.csv: not UTF-8 text \(byte 0xff near offset 18, line 3\)"),
        (b"a,b,label\n", "d.csv", r"no rows of data"),
        (b"a,b\n1,2\n", "d.json", r"must be \.csv, \.tsv, \.arff"),
        (b'a,b,label\n1,"2,x\n', "d.csv", r"d\.csv: line 2"),
        (
            b"@attribute a numeric\n@attribute l {x,y}\n@data\n1,x\n\n2,z\n",
            "d.arff",
            r"line 6, column 'l': 'z' is not one of",
        ),
        (
            b"@attribute a numeric\n@attribute l {x,y}\n@data\n1,x\n2x,y\n",
            "d.arff",
            r"line 5, column 'a': '2x' is not a number \(the attribute is numeric\)",
        ),
        (
            b"@attribute a numeric\n@attribute l {x,y}\n@data\n{0 1, 1 x}\n",
            "d.arff",
            r"line 4: sparse ARFF rows are not supported",
        ),
        (b"@attribute a numeric\n@attribute l relational\n@data\n", "d.arff", r"line 2: attribute 'l': relational"),
        (b"@attribute a numeric\n@attribute l {x,y}\n1,x\n", "d.arff", r"needs @attribute lines and a @data section"),
    ],
)
def test_malformed_data_is_refused_naming_line_and_column(data: bytes, name: str, message: str) -> None:
    for chunk in (3, 1 << 20):
        with pytest.raises(DataError, match=message):
            build_profile(source(data, name, chunk))


def test_a_label_that_is_not_a_column_is_refused() -> None:
    with pytest.raises(DataError, match="the label column 'Class' is not among the columns"):
        build_profile(source(b"a,b\n1,2\n", label="Class"))


def test_a_late_text_value_in_a_numeric_looking_column_names_the_line() -> None:
    rows = [[str(i), "x", "y"] for i in range(5000)] + [["N/A", "x", "y"]]
    with pytest.raises(DataError, match=r"line 5002, column 'a': 'N/A' is not a number, though the column's first"):
        profile_of(csv_bytes(rows, ("a", "b", "label")))


# --- schema differences ---------------------------------------------------------------------------------


def test_schema_differences_are_reported_apart_and_never_skipped() -> None:
    reference = profile_of(csv_bytes(table(500)[0]))
    rows = [[r[0], r[2], "x", r[3]] for r in table(500, seed=2)[0]]
    report, _ = check(reference, source(csv_bytes(rows, ("age", "colour", "extra", "label"))))
    assert report.schema.missing == ("income",) and report.schema.added == ("extra",)
    assert [f.name for f in report.features] == ["colour", "age"] or {f.name for f in report.features} == {
        "age",
        "colour",
    }
    retyped, _ = check(reference, source(csv_bytes([["old", *r[1:]] for r in table(500)[0]])))
    assert dict(retyped.schema.retyped) == {"age": "numeric -> categorical"}
    relabelled, _ = check(reference, source(csv_bytes(table(500)[0]), label="colour"))
    assert relabelled.schema.label == "colour" and relabelled.label is None
    for changed in (report, retyped, relabelled):
        with pytest.raises(SchemaChangedError, match="differ") as caught:
            decide(RetrainWhen(psi=0.2), changed, timedelta(days=1))
        assert isinstance(caught.value, RetrainingError)
    with pytest.raises(
        SchemaChangedError, match=r"missing feature columns \['income'\]; new feature columns \['extra'\]"
    ):
        decide(None, report, None)
    with pytest.raises(SchemaChangedError, match="column 'age' changed kind: numeric -> categorical"):
        decide(None, retyped, None)


# --- retrainWhen ----------------------------------------------------------------------------------------


def test_retrain_when_is_read_from_the_definitions() -> None:
    raw = {"drift": {"psi": 0.2, "ks": 0.1}, "labelShift": 0.1, "newRows": 0.25, "maxAge": "28.00:00:00"}
    policy = parse_retrain_when(raw)
    assert policy == RetrainWhen(psi=0.2, ks=0.1, label_shift=0.1, new_rows=0.25, max_age_s=28 * 86400.0)
    assert policy is not None and policy.max_age == timedelta(days=28) and policy.to_definition() == raw
    assert RetrainWhen.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
    assert parse_retrain_when(None) is None
    assert parse_retrain_when({"maxAge": "1.00:00:00"}) == RetrainWhen(max_age_s=86400.0)


def test_retrain_when_names_every_wrong_field() -> None:
    raw = {"drift": {"psi": "x", "kz": 1}, "labelShift": 2, "newRows": -1, "maxAge": "25:00:00", "every": "day"}
    with pytest.raises(ConfigError) as caught:
        parse_retrain_when(raw, "pipelines.json: pipelines[0].retrainWhen")
    message = str(caught.value)
    for part in (
        "pipelines[0].retrainWhen: unknown field(s) ['every']",
        "pipelines[0].retrainWhen.drift: unknown field(s) ['kz']",
        "pipelines[0].retrainWhen.drift.psi: expected a number in (0, 10], got 'x'",
        "pipelines[0].retrainWhen.labelShift: expected a number in (0, 1], got 2",
        "pipelines[0].retrainWhen.newRows: expected a number in (0, 100], got -1",
        "pipelines[0].retrainWhen.maxAge: '25:00:00' is out of range",
    ):
        assert part in message
    for bad, part in [
        ("always", "retrainWhen: expected an object"),
        ({}, "retrainWhen: give at least one of"),
        ({"drift": {}}, "retrainWhen.drift: give psi, ks or both"),
        ({"drift": 0.2}, "retrainWhen.drift: expected an object"),
        ({"drift": {"ks": True}}, "retrainWhen.drift.ks: expected a number in (0, 1], got True"),
        ({"maxAge": "00:00:00"}, "retrainWhen.maxAge: must be longer than 00:00:00"),
        ({"maxAge": 7}, "retrainWhen.maxAge: expected a timespan string"),
    ]:
        with pytest.raises(ConfigError, match=None) as caught:
            parse_retrain_when(bad)
        assert part in str(caught.value)


# --- decide ---------------------------------------------------------------------------------------------


def report_of(*, shift: float = 0.0, yes: float = 0.3, rows: int = 3000) -> DriftReport:
    reference = profile_of(csv_bytes(table(3000, seed=1)[0]))
    return check(reference, source(csv_bytes(table(rows, seed=2, shift=shift, yes=yes)[0])))[0]


def test_without_a_policy_every_run_trains_with_the_scores_for_information() -> None:
    decision = decide(None, report_of(shift=1.0), timedelta(days=1))
    assert decision.train and decision.reasons == ("no retrainWhen: every run trains",)
    assert {c.name for c in decision.conditions} == {"drift.psi", "drift.ks", "labelShift", "newRows", "maxAge"}
    assert all(c.threshold is None and not c.held for c in decision.conditions)


def test_unchanged_data_is_skipped_with_each_score_and_threshold() -> None:
    policy = RetrainWhen(psi=0.2, ks=0.1, label_shift=0.1, new_rows=0.25, max_age_s=28 * 86400.0)
    decision = decide(policy, report_of(), timedelta(days=3))
    assert not decision.train and decision.drifting == ()
    assert [(c.name, c.threshold, c.held) for c in decision.conditions] == [
        ("drift.psi", 0.2, False),
        ("drift.ks", 0.1, False),
        ("labelShift", 0.1, False),
        ("newRows", 0.25, False),
        ("maxAge", 28.0, False),
    ]
    assert decision.reasons[0].startswith("no condition held: PSI on ")
    assert "growth in rows 0 < 0.25" in decision.reasons[0] and "champion's age in days 3 < 28" in decision.reasons[0]
    assert Decision_round_trips(decision)


def Decision_round_trips(decision: object) -> bool:
    from retraining.drift import Decision

    assert isinstance(decision, Decision)
    return Decision.from_dict(json.loads(json.dumps(decision.to_dict()))) == decision


def test_each_condition_forces_a_retrain_on_its_own() -> None:
    drifted = decide(RetrainWhen(psi=0.2), report_of(shift=0.5), timedelta(days=3))
    assert drifted.train and drifted.drifting == ("age",) and drifted.reasons[0].startswith("PSI on 'age' ")
    ks = decide(RetrainWhen(ks=0.1), report_of(shift=0.5), timedelta(days=3))
    assert ks.train and ks.reasons[0].startswith("KS on 'age' ") and ks.drifting == ("age",)
    label = decide(RetrainWhen(psi=0.2, label_shift=0.1), report_of(yes=0.6), timedelta(days=3))
    assert label.train and len(label.reasons) == 1 and label.reasons[0].startswith("label shift (TVD) 0.")
    grown = decide(RetrainWhen(psi=0.2, new_rows=0.25), report_of(rows=4500), timedelta(days=3))
    assert grown.train and grown.reasons == ("growth in rows 0.5 >= 0.25",)
    old = decide(RetrainWhen(psi=0.2, max_age_s=28 * 86400.0), report_of(), timedelta(days=30))
    assert old.train and old.reasons == ("champion's age in days 30 >= 28",)
    young = decide(RetrainWhen(max_age_s=28 * 86400.0), None, timedelta(days=27))
    assert not young.train


def test_no_champion_or_no_profile_trains() -> None:
    assert decide(RetrainWhen(psi=0.2), None, None).reasons == ("no champion yet: train",)
    assert decide(RetrainWhen(psi=0.2), report_of(), None).train
    assert decide(RetrainWhen(psi=0.2), None, timedelta(days=1)).reasons == (
        "no profile of the champion's data to compare with: train",
    )


def test_importing_the_package_loads_no_third_party_library() -> None:
    heavy = "{'numpy', 'scipy', 'pyarrow', 'requests', 'azure'}"
    code = f"import sys, retraining.drift\nprint(sorted({{m.partition('.')[0] for m in sys.modules}} & {heavy}))\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
