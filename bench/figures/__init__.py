"""One module per figure of `make bench`, each measured side by side with its baseline in the same run.

A figure module has `NAME`, `needs_devhost`, `prepare(stack)` (endpoints and pipelines, before devhost
starts), `measure(stack) -> dict` (what results.json keeps), `report(result) -> list[str]` (its lines in
RESULTS.md) and `summary(result) -> list[Row]` (its rows in the table of targets).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    figure: str
    measured: str
    target: str
    baseline: str
    met: bool | None  # None: not measured, or nothing to meet
    note: str | None = None  # the verdict column when there is nothing to meet (e.g. "devhost's figure")

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**missed**", None: self.note or "-"}[self.met]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"verdict": self.verdict}
