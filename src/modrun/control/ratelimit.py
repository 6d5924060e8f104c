"""Failed-login limiting: at most ``limit`` failures per key in ``window`` seconds."""

from __future__ import annotations

import time
from collections import deque


class FailureLimiter:
    def __init__(self, limit: int = 10, window: float = 300.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        cutoff = time.monotonic() - self.window
        while times and times[0] < cutoff:
            times.popleft()
        return times

    def retry_after(self, key: str) -> float:
        """Seconds until another try is allowed (0: allowed now)."""
        times = self._recent(key)
        return self.window - (time.monotonic() - times[0]) if len(times) >= self.limit else 0.0

    def failed(self, key: str) -> None:
        self._recent(key).append(time.monotonic())
        if len(self._failures) > 100_000:  # forget keys with no recent failures
            self._failures = {k: v for k, v in self._failures.items() if self._recent(k)}
