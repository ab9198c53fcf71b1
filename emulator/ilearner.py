"""The emulator's `.ilearner` format: a trained classifier that is safe to load.

Studio (classic) never documented its `.ilearner` format, so the emulator defines its own:

    ILEARNER-EMU 1\\n
    {"sha256": "<hex of the payload bytes>", "size": <payload length>}\\n
    <payload: canonical JSON of the model>

The payload holds only numbers and strings (feature names, scaler statistics, logistic-regression
coefficients), so loading never executes code: no pickle, no joblib. A wrong magic line, an unknown
version, a checksum mismatch or a payload of the wrong shape raises `ModelFormatError`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

MAGIC = b"ILEARNER-EMU"
FORMAT_VERSION = 1
MAX_MODEL_BYTES = 16 * 1024 * 1024


class ModelFormatError(ValueError):
    """The bytes are not a valid emulator `.ilearner` (corrupt, foreign or wrong version)."""


class DatasetError(ValueError):
    """The training or scoring data cannot be parsed (bad CSV/ARFF, no label, non-numeric)."""


@dataclass(frozen=True)
class Dataset:
    """A labelled or unlabelled table of numeric features."""

    feature_names: tuple[str, ...]
    rows: np.ndarray  # shape (n, features), float
    labels: tuple[str, ...] | None
    label_name: str | None = None


@dataclass(frozen=True)
class TrainedModel:
    """A standardised logistic-regression classifier."""

    feature_names: tuple[str, ...]
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    trained_on_rows: int
    training_job_id: str
    parameters: dict[str, str]

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """Probability of the positive class (the second class) for each row."""
        z = ((rows - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef)
        return 1.0 / (1.0 + np.exp(-(z + self.intercept)))

    def predict(self, rows: np.ndarray) -> list[str]:
        return [self.classes[int(p >= 0.5)] for p in self.predict_proba(rows)]

    def to_payload(self) -> dict[str, Any]:
        return {
            "format": "logistic-regression",
            "feature_names": list(self.feature_names),
            "classes": list(self.classes),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coef": list(self.coef),
            "intercept": self.intercept,
            "trained_on_rows": self.trained_on_rows,
            "training_job_id": self.training_job_id,
            "parameters": self.parameters,
        }


def dumps(model: TrainedModel) -> bytes:
    """Serialise a model to `.ilearner` bytes."""
    payload = json.dumps(model.to_payload(), sort_keys=True, separators=(",", ":")).encode()
    header = json.dumps({"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)})
    return MAGIC + b" " + str(FORMAT_VERSION).encode() + b"\n" + header.encode() + b"\n" + payload


def loads(data: bytes) -> TrainedModel:
    """Parse and verify `.ilearner` bytes; raise `ModelFormatError` on anything unexpected."""
    if len(data) > MAX_MODEL_BYTES:
        raise ModelFormatError(f"model is {len(data)} bytes, more than {MAX_MODEL_BYTES}")
    parts = data.split(b"\n", 2)
    if len(parts) != 3 or not parts[0].startswith(MAGIC + b" "):
        raise ModelFormatError("not an .ilearner file (missing ILEARNER-EMU header)")
    version = parts[0][len(MAGIC) + 1 :]
    if version != str(FORMAT_VERSION).encode():
        raise ModelFormatError(f"unsupported .ilearner version {version.decode(errors='replace')!r}")
    try:
        header = json.loads(parts[1])
        expected_sha, expected_size = str(header["sha256"]), int(header["size"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFormatError("corrupt .ilearner header") from exc
    payload = parts[2]
    if len(payload) != expected_size or hashlib.sha256(payload).hexdigest() != expected_sha:
        raise ModelFormatError(".ilearner checksum mismatch: the file is corrupt or was altered")
    try:
        body = json.loads(payload)
        model = TrainedModel(
            feature_names=tuple(str(n) for n in body["feature_names"]),
            classes=tuple(str(c) for c in body["classes"]),
            mean=tuple(float(v) for v in body["mean"]),
            scale=tuple(float(v) for v in body["scale"]),
            coef=tuple(float(v) for v in body["coef"]),
            intercept=float(body["intercept"]),
            trained_on_rows=int(body["trained_on_rows"]),
            training_job_id=str(body["training_job_id"]),
            parameters={str(k): str(v) for k, v in dict(body["parameters"]).items()},
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFormatError(f"malformed .ilearner payload: {exc}") from exc
    width = len(model.feature_names)
    if len(model.classes) != 2 or not (len(model.mean) == len(model.scale) == len(model.coef) == width):
        raise ModelFormatError("malformed .ilearner payload: inconsistent shapes")
    if not all(math.isfinite(v) for v in (*model.mean, *model.scale, *model.coef, model.intercept)):
        raise ModelFormatError("malformed .ilearner payload: non-finite numbers")
    return model


def version_of(data: bytes) -> str:
    """A short, stable identifier for a serialised model: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(data).hexdigest()[:12]


# ---- datasets -----------------------------------------------------------------------------------


def parse_dataset(data: bytes, extension: str, label_column: str | None) -> Dataset:
    """Parse CSV (with a header row) or ARFF into numeric features and optional labels.

    `label_column` names the label; None means "the last column" for ARFF/CSV training data.
    Pass `label_column=""` to parse unlabelled scoring data.
    """
    text = data.decode("utf-8-sig", errors="strict") if data else ""
    if extension == ".arff":
        names, raw_rows = _parse_arff(text)
    elif extension in (".csv", ".tsv"):
        reader = csv.reader(io.StringIO(text), delimiter="\t" if extension == ".tsv" else ",")
        table = [row for row in reader if row]
        if not table:
            raise DatasetError("dataset is empty (a header row is required)")
        names, raw_rows = [h.strip() for h in table[0]], table[1:]
    else:
        raise DatasetError(f"unsupported dataset extension {extension!r}")
    return table_to_dataset(names, raw_rows, label_column)


def table_to_dataset(names: Sequence[str], raw_rows: Sequence[Sequence[Any]], label_column: str | None) -> Dataset:
    """Turn a header plus rows of cells into a Dataset; raise DatasetError naming the bad cell."""
    if not raw_rows:
        raise DatasetError("dataset has no data rows")
    label_index: int | None
    if label_column == "":
        label_index = None
    elif label_column is None:
        label_index = len(names) - 1
    elif label_column in names:
        label_index = list(names).index(label_column)
    else:
        raise DatasetError(f"label column {label_column!r} not found in {list(names)[:10]}")
    features = [n for i, n in enumerate(names) if i != label_index]
    matrix: list[list[float]] = []
    labels: list[str] = []
    for line_no, row in enumerate(raw_rows, start=2):
        if len(row) != len(names):
            raise DatasetError(f"row {line_no} has {len(row)} cells, expected {len(names)}")
        values = []
        for i, cell in enumerate(row):
            if i == label_index:
                labels.append(str(cell).strip().strip("'\""))
                continue
            try:
                number = float(cell)
            except (TypeError, ValueError):
                raise DatasetError(f"row {line_no}, column {names[i]!r}: {cell!r} is not numeric") from None
            if not math.isfinite(number):
                raise DatasetError(f"row {line_no}, column {names[i]!r}: {cell!r} is not finite")
            values.append(number)
        matrix.append(values)
    return Dataset(
        feature_names=tuple(features),
        rows=np.asarray(matrix, dtype=float),
        labels=tuple(labels) if label_index is not None else None,
        label_name=names[label_index] if label_index is not None else None,
    )


def _parse_arff(text: str) -> tuple[list[str], list[list[str]]]:
    names: list[str] = []
    rows: list[list[str]] = []
    in_data = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        lower = line.lower()
        if in_data:
            rows.append([cell.strip() for cell in line.split(",")])
        elif lower.startswith("@attribute"):
            rest = line[len("@attribute") :].strip()
            if rest.startswith(("'", '"')):
                quote = rest[0]
                name = rest[1 : rest.index(quote, 1)]
            else:
                name = rest.split()[0]
            names.append(name)
        elif lower.startswith("@data"):
            in_data = True
    if not names:
        raise DatasetError("ARFF has no @attribute declarations")
    if not in_data:
        raise DatasetError("ARFF has no @data section")
    return names, rows


def write_arff(relation: str, names: Sequence[str], rows: Sequence[Sequence[Any]], classes: Sequence[str]) -> str:
    """Render a numeric table whose last column is a nominal class as ARFF."""
    lines = [f"@relation {relation}", ""]
    lines += [f"@attribute '{name}' numeric" for name in names[:-1]]
    lines += [f"@attribute '{names[-1]}' {{{','.join(classes)}}}", "", "@data"]
    lines += [",".join(str(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


# ---- training and evaluation --------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    auc: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    test_rows: int

    def to_dict(self) -> dict[str, float]:
        """The metrics under Evaluate Model's names (AUC, Accuracy, Precision, Recall, F1 Score, Test Rows)."""
        return {
            "AUC": self.auc,
            "Accuracy": self.accuracy,
            "Precision": self.precision,
            "Recall": self.recall,
            "F1 Score": self.f1,
            "Test Rows": float(self.test_rows),
        }

    def to_csv(self) -> str:
        """Evaluate-Model-style one-row table."""
        header = "AUC,Accuracy,Precision,Recall,F1 Score,Test Rows"
        values = (
            f"{self.auc:.6f},{self.accuracy:.6f},{self.precision:.6f},{self.recall:.6f},{self.f1:.6f},{self.test_rows}"
        )
        return header + "\n" + values + "\n"


def train(dataset: Dataset, job_id: str, parameters: dict[str, str]) -> tuple[TrainedModel, Evaluation]:
    """Train a logistic-regression classifier on 75% of the rows and evaluate it on the rest.

    GlobalParameters understood: `Regularization` (inverse strength C, default 1.0),
    `Max Iterations` (default 200), `Random Seed` (default 42), `Test Fraction` (default 0.25).
    """
    if dataset.labels is None:
        raise DatasetError("training data has no label column")
    classes = sorted(set(dataset.labels))
    if len(classes) != 2:
        raise DatasetError(f"label must have exactly two classes, found {len(classes)}: {classes[:5]}")
    try:
        c_value = float(parameters.get("Regularization", "1.0"))
        max_iter = int(parameters.get("Max Iterations", "200"))
        seed = int(parameters.get("Random Seed", "42"))
        test_fraction = float(parameters.get("Test Fraction", "0.25"))
    except ValueError as exc:
        raise DatasetError(f"bad global parameter: {exc}") from exc
    if not (c_value > 0 and 0 < test_fraction < 1 and max_iter > 0):
        raise DatasetError("global parameters out of range (Regularization>0, 0<Test Fraction<1)")
    y = np.asarray([classes.index(label) for label in dataset.labels])
    if min(np.bincount(y)) < 2:
        raise DatasetError("each class needs at least two rows")
    x_train, x_test, y_train, y_test = train_test_split(
        dataset.rows, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(x_train)
    scale = np.where(scaler.scale_ == 0, 1.0, scaler.scale_)
    classifier = LogisticRegression(C=c_value, max_iter=max_iter).fit((x_train - scaler.mean_) / scale, y_train)
    model = TrainedModel(
        feature_names=dataset.feature_names,
        classes=(classes[0], classes[1]),
        mean=tuple(float(v) for v in scaler.mean_),
        scale=tuple(float(v) for v in scale),
        coef=tuple(float(v) for v in classifier.coef_[0]),
        intercept=float(classifier.intercept_[0]),
        trained_on_rows=len(x_train),
        training_job_id=job_id,
        parameters=dict(parameters),
    )
    probabilities = model.predict_proba(x_test)
    predicted = (probabilities >= 0.5).astype(int)
    evaluation = Evaluation(
        auc=float(roc_auc_score(y_test, probabilities)) if len(set(y_test)) == 2 else float("nan"),
        accuracy=float(accuracy_score(y_test, predicted)),
        precision=float(precision_score(y_test, predicted, zero_division=0)),
        recall=float(recall_score(y_test, predicted, zero_division=0)),
        f1=float(f1_score(y_test, predicted, zero_division=0)),
        test_rows=len(y_test),
    )
    return model, evaluation


def positive_probabilities(model: TrainedModel, dataset: Dataset) -> np.ndarray:
    """P(second class) per row, taking the model's feature columns from the dataset by name."""
    missing = [n for n in model.feature_names if n not in dataset.feature_names]
    if missing:
        raise DatasetError(f"input lacks the model's feature columns: {missing[:5]}")
    order = [dataset.feature_names.index(n) for n in model.feature_names]
    return model.predict_proba(dataset.rows[:, order])


def score_table(model: TrainedModel, dataset: Dataset) -> tuple[list[str], list[list[str]]]:
    """Append Studio's `Scored Labels` and `Scored Probabilities` columns to each row."""
    probabilities = positive_probabilities(model, dataset)
    names = [*dataset.feature_names, "Scored Labels", "Scored Probabilities"]
    rows = [
        [*(_fmt(v) for v in row), model.classes[int(p >= 0.5)], f"{p:.6f}"]
        for row, p in zip(dataset.rows, probabilities, strict=True)
    ]
    return names, rows


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
