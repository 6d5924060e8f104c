"""Which database, and a SQLAlchemy engine for it.

Default: SQLite file ``<storagePath>/modrun.db``. ``--db URL`` or the
``MODRUN_DB`` variable (or the seeds' ``HYPERMODE_METADATA_DB``) selects
another, e.g. ``postgresql://user:pass@host:5432/modrun``.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url


def database_url(explicit: str | None, storage_path: Path) -> str:
    url = explicit or os.environ.get("MODRUN_DB") or os.environ.get("HYPERMODE_METADATA_DB")
    return url or f"sqlite:///{Path(storage_path).expanduser() / 'modrun.db'}"


def normalize(url: str) -> str:
    """Pick the drivers modrun ships with (psycopg 3 for PostgreSQL)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def display(url: str) -> str:
    """The URL with any password hidden, for logs and errors."""
    return make_url(normalize(url)).render_as_string(hide_password=True)


def is_sqlite(url: str) -> bool:
    return normalize(url).startswith("sqlite")


def make_engine(url: str) -> Engine:
    url = normalize(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=4, max_overflow=4, connect_args={"connect_timeout": 5}
    )


def is_postgres(url: str) -> bool:
    return normalize(url).startswith("postgresql")


def libpq_url(url: str) -> str:
    """The URL as libpq takes it (for connections held outside the pool)."""
    return make_url(normalize(url)).set(drivername="postgresql").render_as_string(hide_password=False)
