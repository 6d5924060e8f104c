"""Admission of calls under load: a bounded number run at once, a bounded
queue waits, and the rest are answered at once with 503 and Retry-After.

Without it a node under more connections than it can serve let latency grow
without bound (clients timed out at 512 connections). The queue is fair
between clients: each client (its address) may hold at most ``per_client``
places, and when a running call ends the next caller is taken from the
clients in turn, so one client's flood cannot starve the others. A caller
that waits longer than ``max_wait`` is answered 503 too: an answer late
enough to be useless is not worth computing.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

DEFAULT_MAX_RUNNING = 64
DEFAULT_MAX_QUEUE = 256
DEFAULT_MAX_WAIT = 0.5
DEFAULT_MAX_STREAMS = 1024
"""Streaming calls are admitted apart: each holds its place for as long as it
streams, mostly waiting on a model, and must not crowd out short calls."""


@dataclass(frozen=True)
class AdmissionLimits:
    max_running: int = DEFAULT_MAX_RUNNING
    max_queue: int = DEFAULT_MAX_QUEUE
    max_wait: float = DEFAULT_MAX_WAIT

    @property
    def per_client(self) -> int:
        return max(8, self.max_queue // 8)


class Shed(Exception):
    """Not admitted; ``reason`` is queue_full, client_share or waited_too_long."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Admission:
    def __init__(self, limits: AdmissionLimits) -> None:
        self.limits = limits
        self.running = 0
        self.waiting = 0
        self._queues: OrderedDict[str, deque[asyncio.Future]] = OrderedDict()  # client -> its waiters
        self.shed: dict[str, int] = {"queue_full": 0, "client_share": 0, "waited_too_long": 0}
        self.admitted = 0

    async def enter(self, client: str) -> float:
        """Wait for a place (seconds waited), or raise Shed. Pair with leave()."""
        if self.running < self.limits.max_running and not self.waiting:
            self.running += 1
            self.admitted += 1
            return 0.0
        queue = self._queues.get(client)
        if self.waiting >= self.limits.max_queue:
            raise self._shed("queue_full")
        if queue is not None and len(queue) >= self.limits.per_client:
            raise self._shed("client_share")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        if queue is None:
            queue = self._queues[client] = deque()
        queue.append(future)
        self.waiting += 1
        started = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(future), self.limits.max_wait)
        except TimeoutError:
            if future.done() and not future.cancelled():  # admitted at the last moment
                return time.monotonic() - started
            future.cancel()
            self._forget(client, future)
            raise self._shed("waited_too_long") from None
        except asyncio.CancelledError:  # the client went away while waiting
            if future.done() and not future.cancelled():
                self.leave()
            else:
                future.cancel()
                self._forget(client, future)
            raise
        self.admitted += 1
        return time.monotonic() - started

    def leave(self) -> None:
        """A call ended: its place goes to the next waiter, clients taken in turn."""
        while self._queues:
            client, queue = next(iter(self._queues.items()))
            future = queue.popleft()
            self.waiting -= 1
            if queue:
                self._queues.move_to_end(client)  # the next waiter comes from another client
            else:
                del self._queues[client]
            if not future.done():
                future.set_result(None)  # the place passes on: running stays the same
                return
        self.running -= 1

    def _forget(self, client: str, future: asyncio.Future) -> None:
        queue = self._queues.get(client)
        if queue is not None and future in queue:
            queue.remove(future)
            self.waiting -= 1
            if not queue:
                del self._queues[client]

    def _shed(self, reason: str) -> Shed:
        self.shed[reason] += 1
        return Shed(reason)
