"""A bounded map of values that count until a moment.

The call checks keep several of these (verified credentials, decisions, call
assertions made and verified): each entry carries the moment it stops counting,
read from the cache's clock (``time.time`` for tokens' own expiry, monotonic
for durations). When the map is full, what has expired goes first, and if
nothing has, everything: memory stays bounded whatever callers send.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._items: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> V | None:
        """The value, while it still counts."""
        entry = self._items.get(key)
        return entry[0] if entry is not None and entry[1] > self.clock() else None

    def put(self, key: K, value: V, until: float) -> None:
        if len(self._items) >= self.limit:
            moment = self.clock()
            self._items = {k: v for k, v in self._items.items() if v[1] > moment}
            if len(self._items) >= self.limit:
                self._items.clear()
        self._items[key] = (value, until)

    def discard(self, key: K) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)
