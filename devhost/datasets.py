"""Real labelled data for the demo, tests and benchmarks: scikit-learn's breast-cancer set.

Written as ARFF like the seed's `labeledexamples.arff`, or as CSV with a header row.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from emulator.ilearner import write_arff


@dataclass(frozen=True)
class LabelledTable:
    names: tuple[str, ...]  # features, then the label column "class"
    rows: tuple[tuple[object, ...], ...]
    classes: tuple[str, ...]

    def head(self, n: int) -> LabelledTable:
        return LabelledTable(self.names, self.rows[:n], self.classes)

    def to_arff(self) -> bytes:
        return write_arff("breast_cancer", self.names, self.rows, self.classes).encode()

    def to_csv(self) -> bytes:
        lines = [",".join(self.names)] + [",".join(str(v) for v in row) for row in self.rows]
        return ("\n".join(lines) + "\n").encode()

    def features(self, n: int) -> tuple[list[str], list[list[object]]]:
        """The first n rows without their label, as an RRS input table."""
        return list(self.names[:-1]), [list(row[:-1]) for row in self.rows[:n]]


@cache
def breast_cancer() -> LabelledTable:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    names = tuple(str(n).replace(" ", "_") for n in data.feature_names) + ("class",)
    rows = tuple(
        tuple(float(v) for v in features) + (str(data.target_names[label]),)
        for features, label in zip(data.data, data.target, strict=True)
    )
    return LabelledTable(names, rows, tuple(str(c) for c in data.target_names))
