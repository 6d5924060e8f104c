"""Writing fleet state through to the metadata database, and loading it back.

The control thread collects what a batch changed (``Changes``) and writes it
in one transaction before any message goes out, so what runtimes are told is
always already durable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from modrun.db.tables import (
    fleet_handled,
    fleet_managers,
    fleet_module_events,
    fleet_modules,
    fleet_runtimes,
    fleet_settings,
)
from modrun.db.times import utc, utc_now
from modrun.db.upsert import upsert
from modrun.orchestrator.state import HISTORY_IN_MEMORY, Event, Manager, Module, Runtime

_RUNTIME_COLUMNS = [c.name for c in fleet_runtimes.columns]
_MODULE_COLUMNS = [c.name for c in fleet_modules.columns]


@dataclass
class Changes:
    runtimes: dict[str, Runtime] = field(default_factory=dict)
    managers: dict[str, Manager] = field(default_factory=dict)
    modules: dict[str, Module] = field(default_factory=dict)
    events: list[tuple[str, Event]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    handled: list[str] = field(default_factory=list)  # keys of the control messages applied
    touched: set[str] = field(default_factory=set)  # runtimes whose state changed (not only ka_ts)

    def __bool__(self) -> bool:
        return bool(
            self.runtimes or self.managers or self.modules or self.events or self.settings or self.handled
        )


NOTIFY_CHANNEL = "modrun_fleet"
NOTIFY_LIMIT = 7000  # bytes; PostgreSQL's payload limit is 8000
HANDLED_KEEP = timedelta(minutes=5)
"""How long applied control messages are remembered (well beyond the replay window)."""


class FleetStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, changes: Changes, fence: Callable[[Connection], None] | None = None) -> None:
        """``fence`` (several orchestrators on PostgreSQL) is called with the
        transaction before anything is written and raises when this one no
        longer leads; the commit then also tells followers (NOTIFY) which rows
        changed."""
        if not changes:
            return
        with self.engine.begin() as conn:
            if fence is not None:
                fence(conn)
                self._notify(conn, changes)
            if changes.handled:
                now = utc_now()
                upsert(conn, fleet_handled, [{"key": k, "at": now} for k in changes.handled], ["key"])
            upsert(
                conn,
                fleet_managers,
                [vars_of(m, ("uuid", "name", "status")) for m in changes.managers.values()],
                ["uuid"],
            )
            upsert(
                conn,
                fleet_runtimes,
                [vars_of(r, _RUNTIME_COLUMNS) for r in changes.runtimes.values()],
                ["uuid"],
            )
            upsert(
                conn, fleet_modules, [vars_of(m, _MODULE_COLUMNS) for m in changes.modules.values()], ["uuid"]
            )
            if changes.events:
                conn.execute(
                    fleet_module_events.insert(),
                    [
                        {
                            "module": uuid,
                            "at": e.at,
                            "status": e.status,
                            "runtime": e.runtime,
                            "reason": e.reason,
                        }
                        for uuid, e in changes.events
                    ],
                )
            upsert(
                conn, fleet_settings, [{"key": k, "value": v} for k, v in changes.settings.items()], ["key"]
            )

    @staticmethod
    def _notify(conn: Connection, changes: Changes) -> None:
        """Tell followers which rows changed; a runtime's periodic keepalive time
        is not worth waking them for (they hear the keepalives themselves)."""
        payloads: list[str] = []
        if changes.managers or changes.settings:
            payloads.append(json.dumps({"all": True}))
        else:  # as many notifications as the ids need (a burst's batch names thousands)
            ids = [("r", u) for u in sorted(changes.touched)] + [("m", u) for u in sorted(changes.modules)]
            chunk: dict[str, list[str]] = {"r": [], "m": []}
            size = 0
            for kind, uuid in ids:
                if size + len(uuid) + 4 > NOTIFY_LIMIT:
                    payloads.append(json.dumps(chunk))
                    chunk, size = {"r": [], "m": []}, 0
                chunk[kind].append(uuid)
                size += len(uuid) + 4
            if size:
                payloads.append(json.dumps(chunk))
        for payload in payloads:
            conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, payload)))

    def unhandled(self, keys: list[str]) -> set[str]:
        """Those of ``keys`` no leader has applied (within HANDLED_KEEP)."""
        done: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 1000):
                chunk = keys[start : start + 1000]
                done.update(
                    conn.execute(
                        sa.select(fleet_handled.c.key).where(fleet_handled.c.key.in_(chunk))
                    ).scalars()
                )
        return set(keys) - done

    def forget_handled(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(fleet_handled.delete().where(fleet_handled.c.at < utc_now() - HANDLED_KEEP))

    def load_some(
        self, runtime_ids: list[str], module_ids: list[str]
    ) -> tuple[dict[str, Runtime], dict[str, Module]]:
        """Only these rows (a follower catching up with what the leader wrote)."""
        with self.engine.connect() as conn:
            runtimes = _runtimes(conn, fleet_runtimes.c.uuid.in_(runtime_ids))
            modules = _modules(conn, fleet_modules.c.uuid.in_(module_ids))
            if modules:
                _add_history(conn, modules, fleet_module_events.c.module.in_(list(modules)))
        return runtimes, modules

    def load(self) -> tuple[dict[str, Runtime], dict[str, Manager], dict[str, Module], dict[str, Any]]:
        with self.engine.connect() as conn:
            managers = {
                row.uuid: Manager(row.uuid, row.name, row.status)
                for row in conn.execute(fleet_managers.select())
            }
            runtimes = _runtimes(conn)
            modules = _modules(conn)
            _add_history(conn, modules, latest=50_000)
            settings = {row.key: row.value for row in conn.execute(fleet_settings.select())}
        return runtimes, managers, modules, settings

    def history(self, module: str) -> list[Event]:
        """The whole recorded history of one module (memory keeps only the latest)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(fleet_module_events)
                .where(fleet_module_events.c.module == module)
                .order_by(fleet_module_events.c.id)
            )
            return [_event(r) for r in rows]


def _runtimes(conn: Connection, where: Any = sa.true()) -> dict[str, Runtime]:
    rows = conn.execute(fleet_runtimes.select().where(where))
    return {row.uuid: Runtime(**{c: _load(getattr(row, c)) for c in _RUNTIME_COLUMNS}) for row in rows}


def _modules(conn: Connection, where: Any = sa.true()) -> dict[str, Module]:
    rows = conn.execute(fleet_modules.select().where(where).order_by(fleet_modules.c.index))
    return {row.uuid: Module(**{c: _load(getattr(row, c)) for c in _MODULE_COLUMNS}) for row in rows}


def _add_history(
    conn: Connection, modules: dict[str, Module], where: Any = sa.true(), latest: int | None = None
) -> None:
    """The modules' recorded events (the ``latest`` of all, or all that ``where``
    takes), oldest first, the newest HISTORY_IN_MEMORY of each kept."""
    query = sa.select(fleet_module_events).where(where)
    if latest is not None:
        rows = list(conn.execute(query.order_by(fleet_module_events.c.id.desc()).limit(latest)))[::-1]
    else:
        rows = list(conn.execute(query.order_by(fleet_module_events.c.id)))
    for row in rows:
        module = modules.get(row.module)
        if module is not None:
            module.history.append(_event(row))
    for module in modules.values():
        del module.history[:-HISTORY_IN_MEMORY]


def _event(row: Any) -> Event:
    return Event(utc(row.at), row.status, row.runtime, row.reason)


def vars_of(obj: Any, columns: list[str] | tuple[str, ...]) -> dict:
    return {c: getattr(obj, c) for c in columns}


def _load(value: Any) -> Any:
    return utc(value) if isinstance(value, datetime) else value
