"""Go-style durations (``5s``, ``500ms``, ``1m30s``) and byte sizes (``256MiB``)."""

from __future__ import annotations

import re

from modrun.errors import ConfigError

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_duration(text: str | float | int) -> float:
    """Seconds in a Go duration string; a bare number means seconds.

    >>> parse_duration("1m30s"), parse_duration("500ms"), parse_duration("0")
    (90.0, 0.5, 0.0)
    """
    if isinstance(text, (int, float)):
        return float(text)
    s = text.strip()
    if not s:
        raise ConfigError("empty duration")
    try:
        return float(s)
    except ValueError:
        pass
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(s) or pos == 0:
        raise ConfigError(f"invalid duration {text!r}: use a number with a unit, e.g. 5s, 500ms, 1m30s")
    return total


def format_duration(seconds: float) -> str:
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds * 1000:g}ms"


def parse_size(text: str | int) -> int:
    """Bytes in a size such as ``256MiB``, ``64MB``, ``1g`` or ``1048576``."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if not match or unit not in _SIZE_UNITS:
        raise ConfigError(f"invalid size {text!r}: use e.g. 256MiB, 64MB or a byte count")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def format_size(n: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    return f"{n}B"
