"""The fleet's calls over the last 15 minutes, a bucket a second: how many,
how many failed (5xx, or no answer), and latency percentiles, for the
console's live charts (``GET /api/stats/calls``)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

WINDOW = 900  # seconds kept
SAMPLES = 256  # latencies kept per second (reservoir: the first ones)


@dataclass
class _Second:
    at: int
    calls: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


class CallStats:
    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self._seconds: deque[_Second] = deque()
        self._lock = threading.Lock()

    def record(self, status: int, seconds: float) -> None:
        now = int(time.time())
        with self._lock:
            if not self._seconds or self._seconds[-1].at != now:
                self._seconds.append(_Second(now))
                while self._seconds and self._seconds[0].at <= now - self.window:
                    self._seconds.popleft()
            bucket = self._seconds[-1]
            bucket.calls += 1
            bucket.errors += status >= 500 or status == 0
            if len(bucket.latencies) < SAMPLES:
                bucket.latencies.append(seconds)

    def series(self, window: int = WINDOW, step: int = 10) -> list[dict]:
        """Points every ``step`` seconds over the last ``window``: calls/s, error
        rate, p50 and p95 latency (ms); empty steps count zero calls."""
        now = int(time.time())
        start = now - min(window, self.window) + 1
        start -= start % step
        with self._lock:
            seconds = [s for s in self._seconds if s.at >= start]
        points = []
        for t in range(start, now + 1, step):
            inside = [s for s in seconds if t <= s.at < t + step]
            calls = sum(s.calls for s in inside)
            errors = sum(s.errors for s in inside)
            latencies = sorted(x for s in inside for x in s.latencies)
            span = min(step, now - t + 1)
            points.append(
                {
                    "t": t,
                    "calls_per_s": round(calls / span, 3),
                    "error_rate": round(errors / calls, 4) if calls else 0.0,
                    "p50_ms": round(_pick(latencies, 0.5) * 1000, 3) if latencies else None,
                    "p95_ms": round(_pick(latencies, 0.95) * 1000, 3) if latencies else None,
                }
            )
        return points


def _pick(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
