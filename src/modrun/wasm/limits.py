"""Per-call sandbox limits."""

from __future__ import annotations

from dataclasses import dataclass

from modrun.config.units import format_duration, format_size

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_MEMORY = 256 * 1024 * 1024
DEFAULT_MAX_VAR_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one call may use. ``max_memory`` bounds each linear memory of an
    instance (the guest's and the kernel's) separately."""

    timeout: float = DEFAULT_TIMEOUT
    max_memory: int = DEFAULT_MAX_MEMORY
    max_var_bytes: int = DEFAULT_MAX_VAR_BYTES

    def describe(self) -> str:
        return f"timeout {format_duration(self.timeout)}, memory {format_size(self.max_memory)}"
