"""Failed-login limiting: at most ``limit`` failures per key in ``window`` seconds.

One orchestrator counts in memory; several on one PostgreSQL count in the
database (``SharedFailureLimiter``), so spreading guesses over every
orchestrator and gateway of a fleet buys no more of them.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.db.tables import login_failures


class Limiter(Protocol):
    def retry_after(self, key: str) -> float: ...

    def failed(self, key: str) -> None: ...


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


class SharedFailureLimiter:
    """The same limits, counted in the fleet's database (``scope`` keeps the
    per-name and per-address counts apart)."""

    def __init__(self, engine: Engine, scope: str, limit: int = 10, window: float = 300.0) -> None:
        self.engine = engine
        self.scope = scope
        self.limit = limit
        self.window = window

    @staticmethod
    def _digest(key: str) -> str:
        """Keys hold names and addresses (and a NUL, which PostgreSQL text refuses): kept as digests."""
        return hashlib.sha256(key.encode()).hexdigest()

    def _window_start(self) -> Any:
        return sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, self.window)

    def retry_after(self, key: str) -> float:
        t = login_failures.c
        key = self._digest(key)
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.extract("epoch", sa.func.now() - sa.func.min(t.at)),
                ).where(
                    t.scope == self.scope,
                    t.key == key,
                    t.at > self._window_start(),
                )
            ).one()
        count, age = row
        return self.window - float(age) if count >= self.limit and age is not None else 0.0

    def failed(self, key: str) -> None:
        t = login_failures.c
        key = self._digest(key)
        with self.engine.begin() as conn:
            conn.execute(login_failures.insert().values(scope=self.scope, key=key, at=sa.func.now()))
            conn.execute(login_failures.delete().where(t.at < self._window_start()))
