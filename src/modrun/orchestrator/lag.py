"""How far behind the control loop runs: the time from a message's arrival
on MQTT to its handling, over the latest few thousand messages.

A fleet that grows past what one control loop handles shows it here first
(long before keepalives time out), so ``/health`` and ``/metrics`` report it.
"""

from __future__ import annotations

import threading
from collections import deque

SAMPLES = 4096


class LagWindow:
    def __init__(self, samples: int = SAMPLES) -> None:
        self._lags: deque[float] = deque(maxlen=samples)
        self._lock = threading.Lock()

    def record(self, seconds: float) -> None:
        with self._lock:
            self._lags.append(seconds)

    def quantiles(self, *qs: float) -> list[float | None]:
        """The lags at ``qs`` (0..1) of the window, in seconds; None while empty."""
        with self._lock:
            ordered = sorted(self._lags)
        return [quantile(ordered, q) if ordered else None for q in qs]


def quantile(ordered: list[float], q: float) -> float:
    """The value at ``q`` (0..1) of a sorted, non-empty list."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
