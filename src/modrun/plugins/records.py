"""The ``plugins`` table: every plugin version a node loads, recorded as it
loads (Modus's columns: id, name, version, language, SDK and its version,
build id and time, git repository and commit). The id is derived from the
wasm's SHA-256 (``history.plugin_id``), the same id inference rows carry."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from modrun.db.history import plugin_id
from modrun.db.tables import plugins
from modrun.db.upsert import upsert

if TYPE_CHECKING:
    from modrun.plugins.plugin import Plugin

log = logging.getLogger("modrun.history")


def plugin_row(plugin: Plugin) -> dict:
    meta = plugin.meta
    return {
        "id": plugin_id(plugin.sha256),
        "name": plugin.name,
        "version": meta.get("version"),
        "language": meta.get("language"),
        "sdk": meta.get("sdk"),
        "sdk_version": meta.get("sdk_version"),
        "build_id": plugin.sha256,
        "build_time": _time(meta.get("build_time")),
        "git_repo": meta.get("git_repo"),
        "git_commit": meta.get("git_commit"),
    }


def record_plugins(engine: Engine, loaded: Iterable[Plugin]) -> int:
    """Upsert the plugins' rows; returns how many. Raises on a database error."""
    rows = [plugin_row(p) for p in loaded]
    if rows:
        with engine.begin() as conn:
            upsert(conn, plugins, rows, ["id"])
    return len(rows)


class PluginRecorder:
    """Records loaded plugin versions off the caller's thread; versions the
    database refused (it may be down: calls go on) wait for the next load."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._unrecorded: dict[str, Plugin] = {}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modrun-plugins")

    def __call__(self, loaded: list[Plugin]) -> None:
        for plugin in loaded:
            self._unrecorded[plugin.sha256] = plugin
        self._writer.submit(self._write)

    def _write(self) -> None:
        pending = dict(self._unrecorded)
        try:
            record_plugins(self.engine, pending.values())
        except Exception as exc:
            log.warning("cannot record %d plugin versions yet: %s", len(pending), exc)
            return
        for key in pending:
            self._unrecorded.pop(key, None)

    def close(self) -> None:
        """Wait for the last write, so versions loaded last are recorded before the exit."""
        self._writer.shutdown(wait=True)


def _time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
