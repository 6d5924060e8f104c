"""Inference history: every model invocation, written in batches off the call path.

``record()`` only appends to an in-memory queue (bounded: past ``max_queue``
entries new ones are dropped and counted). A writer thread inserts batches of
up to ``batch_size`` rows at least every ``flush_interval`` seconds. When the
database cannot be reached, batches are appended to a spool file
(``<storagePath>/spool/inferences.jsonl``) and the database is probed with
backoff; once it answers, the spool is replayed before newer rows, then
emptied. A spool left by an earlier run is replayed at start. ``close()``
(called on SIGTERM via the server's shutdown) drains the queue to the
database, or to the spool if it is down, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from modrun.db.tables import inferences, plugins

log = logging.getLogger("modrun.history")

PLUGIN_NAMESPACE = uuid.UUID("6f1d3c2e-7a51-4f4e-9f0b-6d6f6472756e")


@functools.lru_cache(maxsize=1024)
@contextlib.contextmanager
def _locked(f: Any) -> Iterator[None]:
    """An exclusive lock on an open spool file, held while the block runs."""
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def plugin_id(build_id: str) -> uuid.UUID:
    """A plugin version's id: derived from its wasm's SHA-256, so no lookup is needed."""
    return uuid.uuid5(PLUGIN_NAMESPACE, build_id)


def _encode(row: dict[str, Any]) -> str:
    return json.dumps(row, default=str, separators=(",", ":"))


def _decode(line: str, table: sa.Table) -> dict[str, Any]:
    """A spooled row back with its UUIDs and timestamps as objects."""
    row = json.loads(line)
    for column in table.columns:
        value = row.get(column.name)
        if value is None:
            continue
        if isinstance(column.type, sa.Uuid):
            row[column.name] = uuid.UUID(value)
        elif isinstance(column.type, sa.DateTime):
            row[column.name] = dt.datetime.fromisoformat(value)
    return row


class BatchedWriter:
    """Rows for one table, written in batches by a thread, spooled while the
    database is down (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        table: sa.Table,
        spool_path: Path,
        *,
        upsert_plugins: bool = False,
        batch_size: int = 1000,
        flush_interval: float = 0.5,
        max_queue: int = 100_000,
    ) -> None:
        self.engine = engine
        self.table = table
        self.upsert_plugins = upsert_plugins
        self.spool_path = Path(spool_path)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.written = 0
        self.dropped = 0
        self.spooled_rows = 0
        self._queue: deque[dict[str, Any]] = deque()
        self._in_flight = 0
        self._known_plugins: set[uuid.UUID] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._db_up = True
        self._retry_at = 0.0
        self._backoff = 0.5
        self._thread = threading.Thread(target=self._run, name=f"modrun-{table.name}-writer", daemon=True)

    def start(self) -> BatchedWriter:
        """Adopt the spool left by an earlier process and start writing (after the
        schema is migrated: the constructor touches neither disk nor database)."""
        self.spool_path.parent.mkdir(parents=True, exist_ok=True)
        self.spooled_rows = self._count_spool()
        self._thread.start()
        return self

    # -- the call path ------------------------------------------------------

    def record(self, row: dict[str, Any]) -> None:
        """Queue one inference row; never blocks."""
        if len(self._queue) >= self.max_queue:
            self.dropped += 1
            return
        self._queue.append(row)
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Rows not yet in the database: queued, being written, or spooled."""
        return len(self._queue) + self._in_flight + self.spooled_rows

    # -- the writer thread --------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            stopping = self._stop.is_set()
            try:
                self._drain(final=stopping)
            except Exception:  # never let the writer die
                log.exception("inference history writer failed")
            if stopping and not self._queue:
                return

    def _take(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while self._queue and len(batch) < self.batch_size:
            batch.append(self._queue.popleft())
            self._in_flight += 1
        return batch

    def _drain(self, final: bool) -> None:
        if not self._db_up and (time.monotonic() >= self._retry_at or final):
            self._probe()
        if self._db_up and (self.spooled_rows or self._spooled_elsewhere()):
            try:
                self._replay()
            except FileNotFoundError:  # removed by hand: nothing to replay
                self.spooled_rows = 0
            except OSError as exc:  # unreadable for now: newer rows still go in
                log.error("inference history: cannot replay the spool yet: %s", exc)
        while self._queue:
            batch = self._take()
            try:
                if self._db_up and self._insert(batch):
                    continue
                self._spool(batch)
            finally:
                self._in_flight = 0
            if not final:
                return

    def _probe(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception:
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, 10.0)
            return
        log.info("inference history: database reachable again")
        self._db_up, self._backoff = True, 0.5

    def _write(self, batch: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            if self.upsert_plugins:
                self._ensure_plugins(conn, batch)
            conn.execute(
                self.table.insert(),
                [{k: v for k, v in row.items() if k != "plugin_build_id"} for row in batch],
            )

    def _insert(self, batch: list[dict[str, Any]]) -> bool:
        """Write a batch; False (and database marked down) when it is unreachable.
        Rows the database rejects (bad data) are dropped one by one and counted."""
        try:
            self._write(batch)
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError, OSError) as exc:
            if self._db_up:
                log.warning(
                    "inference history: database unavailable (%s); spooling to %s",
                    type(exc).__name__,
                    self.spool_path,
                )
            self._db_up = False
            self._retry_at = time.monotonic() + self._backoff
            self._known_plugins.clear()
            return False
        except sa.exc.SQLAlchemyError:
            self._known_plugins.clear()
            for row in batch:
                try:
                    self._write([row])
                    self.written += 1
                except sa.exc.SQLAlchemyError as exc:
                    self.dropped += 1
                    log.error("inference history: dropping a row the database rejects: %s", exc)
            return True
        self.written += len(batch)
        return True

    def _ensure_plugins(self, conn: sa.Connection, batch: list[dict[str, Any]]) -> None:
        new = {}
        for row in batch:
            pid = row.get("plugin_id")
            if pid is not None and pid not in self._known_plugins and pid not in new:
                new[pid] = {"id": pid, "name": row.get("plugin") or "?", "build_id": row["plugin_build_id"]}
        if not new:
            return
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(plugins)
        conn.execute(insert.on_conflict_do_nothing(), list(new.values()))
        self._known_plugins.update(new)

    # -- the spool ----------------------------------------------------------

    def _spool(self, batch: list[dict[str, Any]]) -> None:
        """Append a batch whole, or not at all: a write cut short (disk full)
        is cut back off, so the spool never holds half a row."""
        size = None
        try:
            with open(self.spool_path, "a", encoding="utf-8") as f, _locked(f):
                size = f.seek(0, os.SEEK_END)
                f.write("".join(_encode(row) + "\n" for row in batch))
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            if size is not None:
                with contextlib.suppress(OSError):
                    os.truncate(self.spool_path, size)
            self.dropped += len(batch)
            log.error("inference history: cannot spool %d rows: %s", len(batch), exc)
            return
        self.spooled_rows += len(batch)

    def _count_spool(self) -> int:
        try:
            with open(self.spool_path, encoding="utf-8") as f:
                return sum(1 for _ in f)
        except FileNotFoundError:
            return 0

    def _replay(self) -> None:
        """Insert the spool's rows in order, then empty it. The spool is locked
        meanwhile and emptied rather than removed: a process being replaced
        (SIGHUP) may append to the same spool as it stops."""
        with open(self.spool_path, "r+", encoding="utf-8", errors="replace") as f, _locked(f):
            lines = self._decodable([line for line in f if line.strip()])
            done = 0
            while done < len(lines):
                chunk = [_decode(line, self.table) for line in lines[done : done + self.batch_size]]
                if not self._insert(chunk):
                    break
                done += len(chunk)
            f.seek(0)
            f.truncate()
            f.writelines(lines[done:])  # what the database did not take yet
        self.spooled_rows = len(lines) - done
        if done:
            log.info("inference history: replayed %d spooled rows", done)

    def _spooled_elsewhere(self) -> bool:
        """Rows in the spool this writer did not put there (a replaced process's)."""
        try:
            return os.path.getsize(self.spool_path) > 0
        except OSError:
            return False

    def _decodable(self, lines: list[str]) -> list[str]:
        """The spool's lines that are rows; any other (a spool damaged outside
        modrun) is logged and counted as dropped rather than stopping the replay."""
        good = []
        for line in lines:
            try:
                _decode(line, self.table)
            except (ValueError, KeyError, TypeError) as exc:
                self.dropped += 1
                log.error("inference history: skipping a damaged spool line (%s): %.80r", exc, line)
                continue
            good.append(line)
        return good

    # -- shutdown -----------------------------------------------------------

    def close(self, timeout: float = 30.0) -> None:
        """Write out everything queued (to the database, else to the spool)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._queue:  # the thread did not finish in time: keep the rest on disk
            self._spool(list(self._queue))
            self._queue.clear()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the queue and spool are empty (for tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        return not self.pending


class InferenceHistory(BatchedWriter):
    """The ``inferences`` table's writer (plugin rows are upserted as needed)."""

    def __init__(self, engine: Engine, spool_dir: Path, **options: Any) -> None:
        super().__init__(
            engine, inferences, Path(spool_dir) / "inferences.jsonl", upsert_plugins=True, **options
        )
