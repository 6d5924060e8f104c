"""Query parameters several routes share."""

from __future__ import annotations

from collections.abc import Mapping

from modrun.errors import ConfigError

MAX_LIMIT = 1000


def limit_param(query: Mapping[str, str], default: int) -> int:
    """``?limit=``: a whole number, brought into 1 to 1000; anything else is
    a ConfigError saying so."""
    raw = query.get("limit")
    if raw is None:
        return default
    try:
        return max(1, min(int(raw), MAX_LIMIT))
    except ValueError:
        raise ConfigError(f"limit must be a whole number (1 to {MAX_LIMIT})") from None
