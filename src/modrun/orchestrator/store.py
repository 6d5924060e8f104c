"""Writing fleet state through to the metadata database, and loading it back.

The control thread collects what a batch changed (``Changes``) and writes it
in one transaction before any message goes out, so what runtimes are told is
always already durable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.db.tables import (
    fleet_managers,
    fleet_module_events,
    fleet_modules,
    fleet_runtimes,
    fleet_settings,
)
from modrun.db.times import utc
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

    def __bool__(self) -> bool:
        return bool(self.runtimes or self.managers or self.modules or self.events or self.settings)


class FleetStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, changes: Changes) -> None:
        if not changes:
            return
        with self.engine.begin() as conn:
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

    def load(self) -> tuple[dict[str, Runtime], dict[str, Manager], dict[str, Module], dict[str, Any]]:
        with self.engine.connect() as conn:
            managers = {
                row.uuid: Manager(row.uuid, row.name, row.status)
                for row in conn.execute(fleet_managers.select())
            }
            runtimes = {
                row.uuid: Runtime(**{c: _load(getattr(row, c)) for c in _RUNTIME_COLUMNS})
                for row in conn.execute(fleet_runtimes.select())
            }
            modules: dict[str, Module] = {}
            for row in conn.execute(fleet_modules.select().order_by(fleet_modules.c.index)):
                modules[row.uuid] = Module(**{c: _load(getattr(row, c)) for c in _MODULE_COLUMNS})
            events = conn.execute(
                sa.select(fleet_module_events).order_by(fleet_module_events.c.id.desc()).limit(50_000)
            )
            for row in reversed(list(events)):
                module = modules.get(row.module)
                if module is not None:
                    module.history.append(Event(utc(row.at), row.status, row.runtime, row.reason))
            for module in modules.values():
                del module.history[:-HISTORY_IN_MEMORY]
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
            return [Event(utc(r.at), r.status, r.runtime, r.reason) for r in rows]


def vars_of(obj: Any, columns: list[str] | tuple[str, ...]) -> dict:
    return {c: getattr(obj, c) for c in columns}


def _load(value: Any) -> Any:
    return utc(value) if isinstance(value, datetime) else value
