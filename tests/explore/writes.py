"""Count (and optionally fail) the storage writes an activity makes: the "midway" fault of the explorer.

The activities write through `retraining.storage.TrainingStorage`; while one runs, its `write_json` and
`delete` are wrapped so the explorer knows how many writes a call made, and can make the n-th one fail
with the storage error a transient outage gives (the earlier writes took effect).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Counter:
    fail_at: int | None
    writes: int = 0
    failed: bool = False


@contextlib.contextmanager
def counting(fail_at: int | None) -> Iterator[Counter]:
    from retraining.errors import StorageError
    from retraining.storage import TrainingStorage

    counter = Counter(fail_at)
    originals = {name: getattr(TrainingStorage, name) for name in ("write_json", "delete")}

    def wrap(name: str) -> Any:
        original = originals[name]

        def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
            counter.writes += 1
            if counter.fail_at is not None and counter.writes == counter.fail_at:
                counter.failed = True
                raise StorageError("injected: storage unavailable midway (the earlier writes took effect)")
            return original(self, *args, **kwargs)

        return wrapped

    for name in originals:
        setattr(TrainingStorage, name, wrap(name))
    try:
        yield counter
    finally:
        for name, original in originals.items():
            setattr(TrainingStorage, name, original)
