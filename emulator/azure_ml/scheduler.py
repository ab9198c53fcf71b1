"""Timed work off the HTTP loop: one timer thread hands due callbacks to a few worker threads.

Job phases, long-running operations and Event Grid deliveries are all "do this in N seconds".
A callback that raises is logged and forgotten; no thread dies of it. All threads are daemons, so
a delivery stuck on a silent webhook never holds up the emulator's exit.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, name: str, workers: int) -> None:
        self._heap: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._due: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name=f"{name}-timer", daemon=True).start()
        for i in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()

    def call_later(self, delay_s: float, fn: Callable[..., Any], *args: Any) -> None:
        with self._wake:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay_s), next(self._order), fn, args))
            self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._wake.wait(timeout=self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, fn, args = heapq.heappop(self._heap)
            self._due.put((fn, args))

    def _work(self) -> None:
        while True:
            fn, args = self._due.get()
            try:
                fn(*args)
            except Exception:
                logger.exception("scheduled %s failed", getattr(fn, "__qualname__", fn))
