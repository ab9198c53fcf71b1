"""The emulator's model format: round trip, and refusal of corrupt or foreign bytes."""

from __future__ import annotations

import pytest

from devhost.datasets import breast_cancer
from emulator import ilearner


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    table = breast_cancer()
    dataset = ilearner.parse_dataset(table.to_csv(), ".csv", None)
    model, evaluation = ilearner.train(dataset, "job1", {})
    assert evaluation.accuracy > 0.9
    return ilearner.dumps(model)


def test_round_trip_keeps_predictions(model_bytes: bytes) -> None:
    model = ilearner.loads(model_bytes)
    table = breast_cancer()
    dataset = ilearner.parse_dataset(table.to_arff(), ".arff", None)
    predicted = model.predict(dataset.rows)
    assert dataset.labels is not None
    agreement = sum(p == label for p, label in zip(predicted, dataset.labels, strict=True)) / len(predicted)
    assert agreement > 0.95
    assert model.training_job_id == "job1"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b"PK\x03\x04" + b[4:], "missing ILEARNER-EMU header"),
        (lambda b: b.replace(b"ILEARNER-EMU 1", b"ILEARNER-EMU 9", 1), "unsupported .ilearner version"),
        (lambda b: b[:-3] + b"999", "checksum mismatch"),
        (lambda b: b[: len(b) // 2], "checksum mismatch"),
        (lambda b: b"", "missing ILEARNER-EMU header"),
    ],
)
def test_corrupt_or_foreign_files_are_refused(model_bytes: bytes, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ilearner.ModelFormatError, match=message):
        ilearner.loads(mutate(model_bytes))


def test_pickle_bytes_are_refused_without_being_executed() -> None:
    import pickle

    payload = pickle.dumps({"evil": True})
    with pytest.raises(ilearner.ModelFormatError):
        ilearner.loads(payload)


@pytest.mark.parametrize(
    "data, ext, message",
    [
        (b"a,b\nx,1\n", ".csv", "not numeric"),
        (b"a,b\n", ".csv", "no data rows"),
        (b"a,b\n1\n", ".csv", "has 1 cells"),
        (b"@relation r\n@attribute a numeric\n", ".arff", "no @data"),
        (b"1,2", ".xlsx", "unsupported dataset extension"),
    ],
)
def test_bad_datasets_name_the_problem(data: bytes, ext: str, message: str) -> None:
    with pytest.raises(ilearner.DatasetError, match=message):
        ilearner.parse_dataset(data, ext, None)
