"""Warm instances of one plugin version, handed to one call at a time.

Instantiating costs tens of microseconds to milliseconds; a call on a warm
instance costs a few. Instances are interchangeable: a call gets whichever is
idle (or a new one), gives it back afterwards, and an instance that trapped or
grew large is dropped instead of being reused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from modrun.wasm.host import CallState


class Pooled(Protocol):
    """What a pool holds: an Extism ``PluginInstance`` or a Modus ``ModusCaller``."""

    broken: bool

    def call(self, export: str, data: bytes, state: CallState, deadline_ticks: int) -> bytes: ...
    def memory_bytes(self) -> int: ...
    def close(self) -> None: ...


MAX_IDLE = 8
RECYCLE_BYTES = 64 * 1024 * 1024


class InstancePool:
    def __init__(
        self,
        factory: Callable[[], Pooled],
        max_idle: int = MAX_IDLE,
        recycle_bytes: int = RECYCLE_BYTES,
    ) -> None:
        self._factory = factory
        self._idle: list[Pooled] = []
        self.max_idle = max_idle
        self.recycle_bytes = recycle_bytes
        self.created = 0

    def acquire(self) -> Pooled:
        try:
            return self._idle.pop()  # list.pop/append are atomic under the GIL
        except IndexError:
            self.created += 1
            return self._factory()

    def release(self, instance: Pooled) -> None:
        if (
            instance.broken
            or len(self._idle) >= self.max_idle
            or (instance.memory_bytes() > self.recycle_bytes)
        ):
            instance.close()
            return
        self._idle.append(instance)

    def prime(self, instance: Pooled) -> None:
        """Keep an instance made at load time (it proved the plugin links)."""
        self.created += 1
        self.release(instance)

    def clear(self) -> None:
        """Drop every idle instance (their stores are freed now, not at exit)."""
        idle, self._idle = self._idle, []
        for instance in idle:
            instance.close()

    @property
    def idle(self) -> int:
        return len(self._idle)
