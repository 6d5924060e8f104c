"""What the orchestrator knows: runtimes, managers and modules.

The records live in memory (the control thread is their only writer) and are
written through to the metadata database at the end of every batch, so the
in-memory view is always what a restart would load back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modrun.db.times import utc_now
from modrun.fleet.protocol import ALIVE, STATES

DEFAULT_APIS = ["wasm", "wasi"]
RESTART_POLICIES = ("always", "on-failure", "never")
HISTORY_IN_MEMORY = 100


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


@dataclass
class Event:
    at: datetime
    status: str
    runtime: str | None
    reason: str

    def as_dict(self) -> dict:
        return {
            "at": iso(self.at),
            "status": self.status,
            "state": STATES.get(self.status, self.status),
            "runtime": self.runtime,
            "reason": self.reason,
        }


@dataclass
class Runtime:
    uuid: str
    name: str = "runtime"
    runtime_type: str = "linux"
    max_nmodules: int = 0
    apis: list[str] = field(default_factory=lambda: list(DEFAULT_APIS))
    platform: Any = None
    metadata: Any = None
    ka_interval_sec: float = 60
    ka_ts: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)
    status: str = ALIVE
    parent: str | None = None  # manager uuid
    # reported in keepalives, not persisted
    last_seen: float = field(default_factory=time.monotonic)
    reported: bool = False  # this process has heard a keepalive of it (its functions are known)
    load: dict = field(default_factory=dict)
    load_share: float = 0.0  # of ``load``, for placement (scheduler.load_share)
    children: list[dict] = field(default_factory=list)
    functions: list[dict] = field(default_factory=list)
    graphql: frozenset[str] = frozenset()

    @property
    def alive(self) -> bool:
        return self.status == ALIVE

    @property
    def labels(self) -> dict:
        meta = self.metadata if isinstance(self.metadata, dict) else {}
        found = meta.get("labels")
        return found if isinstance(found, dict) else {}

    @property
    def url(self) -> str | None:
        meta = self.metadata if isinstance(self.metadata, dict) else {}
        url = meta.get("url")
        return url.rstrip("/") if isinstance(url, str) and url else None

    def short(self) -> dict:
        return {"uuid": self.uuid, "name": self.name, "runtime_type": self.runtime_type}

    def detail(self) -> dict:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "runtime_type": self.runtime_type,
            "max_nmodules": self.max_nmodules,
            "apis": self.apis,
            "platform": self.platform,
            "metadata": self.metadata,
            "ka_interval_sec": self.ka_interval_sec,
            "ka_ts": iso(self.ka_ts),
            "updated_at": iso(self.updated_at),
            "status": self.status,
            "alive": self.alive,
            "parent": self.parent,
            "load": self.load,
            "labels": self.labels,
            "functions": self.functions,
        }


@dataclass
class Manager:
    uuid: str
    name: str = "manager"
    status: str = ALIVE


@dataclass
class Module:
    index: int
    uuid: str
    name: str = "module"
    file: str = ""
    parent: str | None = None  # the runtime it runs (or is queued) on
    pinned: bool = False  # the request named its parent
    sha256: str | None = None
    kind: str = "unknown"  # plugin | wasi | unknown
    apis: list[str] = field(default_factory=lambda: list(DEFAULT_APIS))
    args: Any = field(default_factory=list)
    channels: list = field(default_factory=list)
    restart: str = "never"
    status: str = ALIVE
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)
    exit_code: int | None = None
    last_error: str | None = None
    restarts: int = 0
    group: str | None = None  # replicas of one group go to distinct runtimes
    labels: dict = field(default_factory=dict)  # node labels the runtime must have
    history: list[Event] = field(default_factory=list)
    retry_at: float = 0.0  # monotonic; a failed module waits for its backoff

    def short(self) -> dict:
        return {"uuid": self.uuid, "name": self.name, "parent": self.parent, "file": self.file}

    def spec(self) -> dict:
        """What a runtime is sent to create it."""
        return {
            "type": "module",
            "uuid": self.uuid,
            "name": self.name,
            "parent": self.parent,
            "file": self.file,
            "filename": self.file,
            "sha256": self.sha256,
            "kind": self.kind,
            "apis": self.apis,
            "args": self.args,
            "channels": self.channels,
            "group": self.group,
            "labels": self.labels,
        }

    def detail(self) -> dict:
        return {
            "index": self.index,
            **self.spec(),
            "status": self.status,
            "state": STATES.get(self.status, self.status),
            "alive": self.status == ALIVE,
            "pinned": self.pinned,
            "restart": self.restart,
            "fault_crash": "ignore" if self.restart == "never" else "restart",
            "restarts": self.restarts,
            "exit_code": self.exit_code,
            "last_error": self.last_error,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "history": [e.as_dict() for e in self.history],
        }
