"""The fleet's calls over the last 15 minutes, a bucket a second: how many,
how many failed (5xx, or no answer), and latency percentiles, for the
console's live charts (``GET /api/stats/calls``).

Each second is also kept by the artifacts a call ran, so a user's charts count
only the calls of artifacts they may Read: the fleet's traffic as a whole is
the operator's to see.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from modrun.orchestrator.lag import quantile

WINDOW = 900  # seconds kept
SAMPLES = 256  # latencies kept per second and artifacts called (reservoir: the first ones)


@dataclass
class _Tally:
    calls: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, failed: bool, seconds: float) -> None:
        self.calls += 1
        self.errors += failed
        if len(self.latencies) < SAMPLES:
            self.latencies.append(seconds)


@dataclass
class _Second:
    at: int
    by_artifacts: dict[frozenset[str], _Tally] = field(default_factory=dict)

    def tallies(self, only: frozenset[str] | None) -> list[_Tally]:
        if only is None:
            return list(self.by_artifacts.values())
        return [t for key, t in self.by_artifacts.items() if key and key <= only]


class CallStats:
    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self._seconds: deque[_Second] = deque()
        self._lock = threading.Lock()

    def record(self, status: int, seconds: float, artifacts: Iterable[str] = ()) -> None:
        """One call that ran ``artifacts`` (none known: counted for admins only)."""
        now = int(time.time())
        failed = status >= 500 or status == 0
        key = frozenset(artifacts)
        with self._lock:
            if not self._seconds or self._seconds[-1].at != now:
                self._seconds.append(_Second(now))
                while self._seconds and self._seconds[0].at <= now - self.window:
                    self._seconds.popleft()
            bucket = self._seconds[-1]
            tally = bucket.by_artifacts.get(key)
            if tally is None:
                tally = bucket.by_artifacts[key] = _Tally()
            tally.add(failed, seconds)

    def series(self, window: int = WINDOW, step: int = 10, only: frozenset[str] | None = None) -> list[dict]:
        """Points every ``step`` seconds over the last ``window``: calls/s, error
        rate, p50 and p95 latency (ms); empty steps count zero calls. ``only``:
        just the calls whose artifacts are all in it (None: every call)."""
        now = int(time.time())
        start = now - min(window, self.window) + 1
        start -= start % step
        with self._lock:
            seconds = [(s.at, s.tallies(only)) for s in self._seconds if s.at >= start]
        points = []
        for t in range(start, now + 1, step):
            inside = [tally for at, tallies in seconds if t <= at < t + step for tally in tallies]
            calls = sum(s.calls for s in inside)
            errors = sum(s.errors for s in inside)
            latencies = sorted(x for s in inside for x in s.latencies)
            span = min(step, now - t + 1)
            points.append(
                {
                    "t": t,
                    "calls_per_s": round(calls / span, 3),
                    "error_rate": round(errors / calls, 4) if calls else 0.0,
                    "p50_ms": round(quantile(latencies, 0.5) * 1000, 3) if latencies else None,
                    "p95_ms": round(quantile(latencies, 0.95) * 1000, 3) if latencies else None,
                }
            )
        return points
