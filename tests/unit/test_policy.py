"""Pure decisions: polling back-off, the gate, metrics parsing and result-location checks."""

from __future__ import annotations

import math

import pytest

from retraining.definitions import Gate
from retraining.errors import ForeignLocationError, ResponseFormatError
from retraining.models import BlobPath
from retraining.policy import check_result_location, decide, parse_metrics
from retraining.polling import PollPlanner, next_poll_delay_s, poll_schedule

POLICY = {"first_s": 5.0, "max_s": 300.0, "fraction": 0.05}


def test_detection_delay_stays_within_the_fraction_of_the_job() -> None:
    for duration in (60, 600, 3600, 7200):
        polls = poll_schedule(duration, **POLICY)
        detected = polls[-1]
        assert detected >= duration
        assert detected - duration <= max(POLICY["first_s"], 0.05 * duration) + 1e-9


def test_poll_count_grows_logarithmically() -> None:
    counts = {d: len(poll_schedule(d, first_s=1.0, max_s=1e9, fraction=0.05)) for d in (100, 1_000, 10_000)}
    # Ten times longer jobs add a roughly constant number of polls (log growth), not ten times more.
    assert counts[10_000] - counts[1_000] == pytest.approx(counts[1_000] - counts[100], abs=3)
    assert counts[10_000] < 10_000 / 50


def test_delay_is_capped() -> None:
    assert next_poll_delay_s(10_000_000, **POLICY) == 300.0
    assert next_poll_delay_s(0, **POLICY) == 5.0


def test_gate_minimums_and_serving_comparison() -> None:
    gate = Gate(minimums={"AUC": 0.8}, not_worse_than_serving=("AUC", "Accuracy"))
    assert decide(gate, {"AUC": 0.9, "Accuracy": 0.9}, None).promote
    assert decide(gate, {"AUC": 0.9, "Accuracy": 0.9}, {"AUC": 0.85, "Accuracy": 0.9}).promote
    rejected = decide(gate, {"AUC": 0.75, "Accuracy": 0.88}, {"AUC": 0.7, "Accuracy": 0.9})
    assert not rejected.promote
    assert rejected.reasons == (
        "AUC 0.7500 is below the minimum 0.8000",
        "Accuracy 0.8800 is worse than the champion's 0.9000",
    )
    assert not decide(gate, {"Accuracy": 0.9}, None).promote  # missing AUC
    assert not decide(gate, {"AUC": math.nan, "Accuracy": 1.0}, None).promote


def test_metrics_csv() -> None:
    metrics = parse_metrics(b"AUC,Accuracy,Note\n0.91,0.88,fine\n")
    assert metrics == {"AUC": 0.91, "Accuracy": 0.88}
    for bad in (b"", b"AUC\n", b"a,b\nx,y\n", b"\xff\xfe", b"A," * 40_000 + b"\n1\n"):
        with pytest.raises(ResponseFormatError):
            parse_metrics(bad)


ACCOUNT = "http://127.0.0.1:10000/devstoreaccount1/"
EXPECTED = BlobPath("trainingoutput", "p/run/model.ilearner")


def test_result_location_must_be_the_requested_blob_in_our_account() -> None:
    assert (
        check_result_location(ACCOUNT, "trainingoutput/p/run/model.ilearner", account_url=ACCOUNT, expected=EXPECTED)
        == EXPECTED
    )
    assert (
        check_result_location(
            ACCOUNT.rstrip("/"), "/trainingoutput/p/run/model.ilearner", account_url=ACCOUNT, expected=EXPECTED
        )
        == EXPECTED
    )
    assert (
        check_result_location(None, "trainingoutput/p/run/model.ilearner", account_url=ACCOUNT, expected=EXPECTED)
        == EXPECTED
    )


@pytest.mark.parametrize(
    "base, relative, error",
    [
        ("https://evil.blob.core.windows.net/", "trainingoutput/p/run/model.ilearner", ForeignLocationError),
        ("http://127.0.0.1:10000/otheraccount/", "trainingoutput/p/run/model.ilearner", ForeignLocationError),
        (ACCOUNT, "trainingoutput/p/other/model.ilearner", ForeignLocationError),
        (ACCOUNT, "trainingoutput/p/run/../run/model.ilearner", Exception),
        (ACCOUNT, "trainingoutput/p/run/%2e%2e/x.ilearner", Exception),
        (ACCOUNT, None, ResponseFormatError),
        (42, "trainingoutput/p/run/model.ilearner", ResponseFormatError),
    ],
)
def test_foreign_or_malformed_locations_are_refused(base: object, relative: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_result_location(base, relative, account_url=ACCOUNT, expected=EXPECTED)


def test_gate_names_the_champion_it_compared_with() -> None:
    gate = Gate(not_worse_than_serving=("AUC",))
    assert (
        decide(gate, {"AUC": 0.9}, {"AUC": 0.8}, compared_with="20261114T030000Z-1a2b3c4d").compared_with
        == "20261114T030000Z-1a2b3c4d"
    )
    assert decide(gate, {"AUC": 0.9}, None, compared_with=None).compared_with is None


def test_a_failing_service_is_polled_again_soon_then_with_back_off() -> None:
    planner = PollPlanner((), **POLICY)
    assert planner.next_delay_s(6000) == 300.0
    assert [planner.next_delay_s(6000, failing_in_a_row=n) for n in (1, 2, 3, 4, 7)] == [5.0, 10.0, 20.0, 40.0, 300.0]
