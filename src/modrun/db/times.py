"""UTC times as the metadata database keeps them."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """``value`` with its zone: SQLite returns naive datetimes, and everything stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
