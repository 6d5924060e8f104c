"""The one reader of Linux ``/proc``: CPU time of a task or process, memory.

Every reading degrades to zero where ``/proc`` is missing or unreadable (not
Linux, a process that just ended), so a keepalive never fails for a number.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def cpu_seconds(stat: str | Path) -> float:
    """User + system CPU seconds from a ``stat`` file (``/proc/<pid>/stat``,
    ``/proc/self/task/<tid>/stat``)."""
    try:
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def meminfo() -> tuple[int, int]:
    """(total, available) bytes of the machine's memory."""
    values: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return values.get("MemTotal", 0), values.get("MemAvailable", 0)


def rss() -> int:
    """Resident bytes of this process."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class CpuShare:
    """This process's share of the machine's CPU since the previous reading, in percent."""

    def __init__(self) -> None:
        self._then = (time.monotonic(), time.process_time())

    def percent(self) -> float:
        moment, cpu = time.monotonic(), time.process_time()
        then, cpu_then = self._then
        self._then = (moment, cpu)
        cores = os.cpu_count() or 1
        return (cpu - cpu_then) / (moment - then) / cores * 100 if moment > then else 0.0
