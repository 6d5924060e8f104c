"""The least-loaded runtime of a kind, without scanning every runtime per module.

For each kind of module (the runtimes that could take it: ``ModuleControl``'s
eligibility), a heap of (score, name, uuid) — the score is what the
least-loaded policy ranks by (modules placed plus the reported CPU and memory
shares), ties broken by name then uuid, exactly as ``LeastLoaded.choose``. A
runtime whose score changes (a module placed on it or gone, a keepalive's
load) gets a fresh entry in each heap it is in; its older ones are skipped
when they come up. Placing 10,000 modules on 1,000 runtimes costs a few heap
operations each instead of a pass over the thousand.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Mapping

from modrun.orchestrator.state import Runtime

Entry = tuple[float, str, str, int]  # score, name, uuid, stamp


class LoadIndex:
    def __init__(self, counts: Mapping[str, int]) -> None:
        self.counts = counts
        self._heaps: dict[Hashable, list[Entry]] = {}
        self._runtimes: dict[Hashable, dict[str, Runtime]] = {}
        self._keys_of: dict[str, list[Hashable]] = {}
        self._stamp: dict[str, int] = {}

    def clear(self) -> None:
        """The runtimes changed (one joined, died, changed its apis or labels)."""
        self._heaps.clear()
        self._runtimes.clear()
        self._keys_of.clear()

    def track(self, key: Hashable, runtimes: list[Runtime]) -> None:
        self._runtimes[key] = {r.uuid: r for r in runtimes}
        self._heaps[key] = [self._entry(r) for r in runtimes]
        heapq.heapify(self._heaps[key])
        for runtime in runtimes:
            self._keys_of.setdefault(runtime.uuid, []).append(key)

    def tracks(self, key: Hashable) -> bool:
        return key in self._heaps

    def changed(self, uuid: str) -> None:
        """``uuid``'s score changed: its entries so far are stale."""
        keys = self._keys_of.get(uuid)
        self._stamp[uuid] = self._stamp.get(uuid, 0) + 1
        if not keys:
            return
        for key in keys:
            runtime = self._runtimes[key][uuid]
            heap = self._heaps[key]
            heapq.heappush(heap, self._entry(runtime))
            if len(heap) > 4 * len(self._runtimes[key]) + 1024:  # mostly stale: start again
                self._heaps[key] = [self._entry(r) for r in self._runtimes[key].values()]
                heapq.heapify(self._heaps[key])

    def best(self, key: Hashable, acceptable: Callable[[Runtime], bool]) -> Runtime | None:
        """The least-loaded runtime of ``key`` that ``acceptable`` takes (room,
        not already hosting the module's group), or None."""
        heap = self._heaps[key]
        runtimes = self._runtimes[key]
        passed: list[Entry] = []
        found: Runtime | None = None
        while heap:
            entry = heap[0]
            if entry[3] != self._stamp.get(entry[2], 0):
                heapq.heappop(heap)  # an older score
                continue
            runtime = runtimes[entry[2]]
            if acceptable(runtime):
                found = runtime
                break
            passed.append(heapq.heappop(heap))
        for entry in passed:
            heapq.heappush(heap, entry)
        return found

    def _entry(self, runtime: Runtime) -> Entry:
        score = self.counts.get(runtime.uuid, 0) + runtime.load_share
        return (score, runtime.name, runtime.uuid, self._stamp.get(runtime.uuid, 0))
