"""The built-in trainer and scorer behind Azure ML jobs, deployments and seeding.

A command job's `command` is not executed: the emulator trains the shared scikit-learn logistic
regression (`emulator.ilearner`) on the job's data instead. Literal inputs tune it, matched on
their names without case, `_` or `-`: `regularization`/`c`, `max_iterations`/`max_iter`,
`random_seed`/`seed`, `test_fraction`/`test_size`, and `label_column`/`label`/`target` (default:
the last column).

The model folder (written to the job's first `custom_model`/`mlflow_model` output):

    MLmodel          MLflow-style descriptor, written as JSON (which YAML readers also accept):
                     flavors.emulator_logistic_regression.data = "model.ilearner", signature
                     inputs/outputs (MLflow column-spec JSON strings), and metadata with
                     feature_columns, label_column, classes, model_version (content id), run_id
    model.ilearner   the checksummed, pickle-free model (see emulator.ilearner)

Metrics are one flat JSON object with Evaluate Model's names, e.g. `{"AUC": 0.97, "Accuracy":
0.93, "Precision": ..., "Recall": ..., "F1 Score": ..., "Test Rows": 143.0}`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import ilearner
from ..blobs import StorageError
from .storage import Location, Storage

MODEL_FILE = "model.ilearner"
DESCRIPTOR_FILE = "MLmodel"
METRICS_FILE = "metrics.json"
DATA_EXTENSIONS = (".csv", ".tsv", ".arff")
_LEARNER_LITERALS = {
    "regularization": "Regularization",
    "c": "Regularization",
    "maxiterations": "Max Iterations",
    "maxiter": "Max Iterations",
    "randomseed": "Random Seed",
    "seed": "Random Seed",
    "testfraction": "Test Fraction",
    "testsize": "Test Fraction",
}
_LABEL_LITERALS = ("labelcolumn", "label", "target", "targetcolumn")


@dataclass(frozen=True)
class Trained:
    model: ilearner.TrainedModel
    data: bytes  # the serialised model
    evaluation: ilearner.Evaluation
    label: str

    @property
    def content_id(self) -> str:
        return ilearner.version_of(self.data)


def learner_settings(literals: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """(ilearner parameters, label column or None) from a job's literal inputs."""
    parameters: dict[str, str] = {}
    label = None
    for name, value in literals.items():
        key = name.lower().replace("_", "").replace("-", "")
        if key in _LEARNER_LITERALS:
            parameters[_LEARNER_LITERALS[key]] = value
        elif key in _LABEL_LITERALS:
            label = value
    return parameters, label


def extension_of(name: str) -> str:
    tail = name.rsplit("/", 1)[-1]
    return "." + tail.rsplit(".", 1)[1].lower() if "." in tail else ""


def train(dataset: ilearner.Dataset, run: str, parameters: dict[str, str]) -> Trained:
    model, evaluation = ilearner.train(dataset, run, parameters)
    return Trained(model, ilearner.dumps(model), evaluation, dataset.label_name or "")


def train_on_bytes(data: bytes, name: str, label: str | None, run: str, parameters: dict[str, str]) -> Trained:
    """Train on a CSV/TSV/ARFF file's bytes; DatasetError if they cannot be used."""
    return train(ilearner.parse_dataset(data, extension_of(name), label), run, parameters)


def train_on_table(names: Sequence[str], rows: Sequence[Sequence[Any]], label: str | None, run: str) -> Trained:
    return train(ilearner.table_to_dataset(names, rows, label), run, {})


def descriptor(trained: Trained, run: str) -> bytes:
    model = trained.model
    inputs = [{"name": n, "type": "double"} for n in model.feature_names]
    document = {
        "artifact_path": "model",
        "flavors": {
            "emulator_logistic_regression": {
                "data": MODEL_FILE,
                "format": "ILEARNER-EMU 1",
                "loader": "emulator.ilearner.loads",
            }
        },
        "model_uuid": uuid.uuid4().hex,
        "run_id": run,
        "utc_time_created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "signature": {"inputs": json.dumps(inputs), "outputs": json.dumps([{"name": trained.label, "type": "string"}])},
        "metadata": {
            "feature_columns": list(model.feature_names),
            "label_column": trained.label,
            "classes": list(model.classes),
            "model_version": trained.content_id,
        },
    }
    return json.dumps(document, indent=2).encode()


def write_model_folder(storage: Storage, folder: Location, trained: Trained, run: str) -> None:
    storage.write(folder.child(MODEL_FILE), trained.data, f"outputs ({MODEL_FILE})")
    storage.write(folder.child(DESCRIPTOR_FILE), descriptor(trained, run), f"outputs ({DESCRIPTOR_FILE})")


def metrics_json(evaluation: ilearner.Evaluation) -> bytes:
    return json.dumps(evaluation.to_dict()).encode()


def load_model(storage: Storage, location: Location, where: str) -> tuple[str, ilearner.TrainedModel]:
    """(content id, model) from a model folder, or from a `.ilearner` file itself."""
    if location.is_folder:
        names = storage.list(location, where)
        candidates = [n for n in names if n == MODEL_FILE] or [n for n in names if n.endswith(".ilearner")]
        if not candidates:
            raise StorageError("ModelNotFound", f"{where}: no {MODEL_FILE} under {location.container}/{location.path}.")
        location = location.child(candidates[0])
    data = storage.read(location, where)
    try:
        return ilearner.version_of(data), ilearner.loads(data)
    except ilearner.ModelFormatError as exc:
        raise StorageError("InvalidModel", f"{where}: {exc}") from None


def predict(model: ilearner.TrainedModel, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """One `{"label", "probability"}` per row; the probability is that of the predicted label."""
    dataset = ilearner.table_to_dataset(names, rows, "")
    out = []
    for p in ilearner.positive_probabilities(model, dataset):
        positive = bool(p >= 0.5)
        out.append({"label": model.classes[int(positive)], "probability": round(float(p if positive else 1 - p), 6)})
    return out


def score_file(model: ilearner.TrainedModel, data: bytes, name: str) -> list[list[str]]:
    """Rows of `<feature columns...>,label,probability` for a CSV/TSV/ARFF file (without header)."""
    dataset = ilearner.parse_dataset(data, extension_of(name), "")
    scored = predict(model, list(dataset.feature_names), dataset.rows.tolist())
    return [
        [*(repr(float(v)) for v in row), s["label"], f"{s['probability']:.6f}"]
        for row, s in zip(dataset.rows, scored, strict=True)
    ]
