"""Which of the processes of ``modrun serve --processes N`` this one is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessSlot:
    """One of the N processes of ``modrun serve --processes N``."""

    index: int
    count: int
    run_dir: Path  # private (0700) directory of the processes' unix sockets
    restarts: int = 0  # times this slot's process was restarted after dying

    def socket_path(self, index: int | None = None) -> Path:
        return self.run_dir / f"p{self.index if index is None else index}.sock"

    @property
    def peers(self) -> list[Path]:
        """The other processes' private sockets (for /metrics across processes)."""
        return [self.socket_path(i) for i in range(self.count) if i != self.index]
