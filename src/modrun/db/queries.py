"""Reading the inference history back: filters and cursor pagination."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.db.tables import inferences
from modrun.db.times import utc
from modrun.errors import ConfigError

MAX_LIMIT = 1000


def parse_time(text: str | None) -> dt.datetime | None:
    """RFC 3339 / ISO 8601, or Unix seconds."""
    if not text:
        return None
    try:
        return dt.datetime.fromtimestamp(float(text), dt.UTC)
    except ValueError:
        pass
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"invalid time {text!r}: use ISO 8601 (2026-11-22T10:00:00Z) or Unix seconds"
        ) from None
    return utc(value)


@dataclass
class InferenceFilter:
    model: str | None = None
    function: str | None = None
    plugin: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    status: str | None = None


def _cursor(row: Any) -> str:
    raw = json.dumps([utc(row.started_at).isoformat(), str(row.id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        started, ident = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return dt.datetime.fromisoformat(started), uuid.UUID(ident)
    except (ValueError, TypeError):
        raise ConfigError("invalid cursor: pass back the nextCursor of a previous page") from None


def as_dict(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "modelHash": row.model_hash,
        "model": row.model_name,
        "input": row.input,
        "output": row.output,
        "startedAt": utc(row.started_at).isoformat(timespec="milliseconds"),
        "durationMs": row.duration_ms,
        "pluginId": str(row.plugin_id) if row.plugin_id else None,
        "plugin": row.plugin,
        "function": row.function,
        "status": row.status,
        "error": row.error,
    }


def list_inferences(
    engine: Engine, filters: InferenceFilter, limit: int = 100, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first. Returns one page and the cursor of the next (None at the end)."""
    limit = max(1, min(limit, MAX_LIMIT))
    t = inferences
    query = sa.select(t)
    for column, value in (
        (t.c.model_name, filters.model),
        (t.c.function, filters.function),
        (t.c.plugin, filters.plugin),
        (t.c.status, filters.status),
    ):
        if value:
            query = query.where(column == value)
    if filters.since:
        query = query.where(t.c.started_at >= filters.since)
    if filters.until:
        query = query.where(t.c.started_at < filters.until)
    if cursor:
        started, ident = _uncursor(cursor)
        query = query.where(
            sa.or_(t.c.started_at < started, sa.and_(t.c.started_at == started, t.c.id < ident))
        )
    query = query.order_by(t.c.started_at.desc(), t.c.id.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(query).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return [as_dict(r) for r in rows], (_cursor(rows[-1]) if more and rows else None)
