"""The fleet's state and the only ways to change it.

Every status change goes through ``transition`` (which keeps the per-runtime
module counts, the queue and the history in step) and every message to send
through ``send``; both are collected per batch by the control loop, written to
the database, and only then published.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from modrun.db.times import utc_now
from modrun.fleet import protocol as P
from modrun.orchestrator.state import HISTORY_IN_MEMORY, Event, Manager, Module, Runtime
from modrun.orchestrator.store import Changes

OCCUPYING = (P.ALIVE, P.EXITING)
"""Module states that take a slot on their runtime."""


def _nothing(_uuid: str) -> None:
    pass


class Fleet:
    def __init__(
        self,
        topics: P.Topics,
        runtimes: dict[str, Runtime],
        managers: dict[str, Manager],
        modules: dict[str, Module],
    ) -> None:
        self.topics = topics
        self.runtimes = runtimes
        self.managers = managers
        self.modules = modules
        self.next_index = max((m.index for m in modules.values()), default=0) + 1
        self.counts: dict[str, int] = {}
        self.on_score: Callable[[str], None] = _nothing  # a runtime's module count or load changed
        self.group_hosts: dict[str, dict[str, int]] = {}  # group -> runtime -> its running modules of it
        self.hosted: dict[str, dict[str, Module]] = {}  # runtime -> the modules naming it, any state
        self.queued: dict[str, Module] = {}
        self.exiting: dict[str, float] = {}
        for module in modules.values():
            self._account(module, +1)
        self.changes = Changes()
        self.outbox: list[tuple[str, Any]] = []
        self.version = 0  # bumped when what the gateway routes on changes
        self.runtime_epoch = 0  # bumped when a runtime's status, apis, labels or kind may have changed

    def module_states(self, keep: Callable[[Module], bool] | None = None) -> dict[str, int]:
        """How many modules (those ``keep`` takes) are in each state (every state
        named, zero or not): the one count /health, the console's summary and
        /metrics report."""
        states = dict.fromkeys(P.STATES.values(), 0)
        for module in self.modules.values():
            if keep is not None and not keep(module):
                continue
            state = P.STATES.get(module.status, module.status)
            states[state] = states.get(state, 0) + 1
        return states

    # -- bookkeeping ------------------------------------------------------------

    def _account(self, module: Module, sign: int) -> None:
        if module.parent:
            if sign > 0:
                self.hosted.setdefault(module.parent, {})[module.uuid] = module
            else:
                on = self.hosted.get(module.parent, {})
                on.pop(module.uuid, None)
                if not on:
                    self.hosted.pop(module.parent, None)
        if module.status in OCCUPYING and module.parent:
            self.counts[module.parent] = self.counts.get(module.parent, 0) + sign
            self.on_score(module.parent)
        if module.group and module.parent and module.status in (P.ALIVE, P.EXITING):
            hosts = self.group_hosts.setdefault(module.group, {})
            hosts[module.parent] = hosts.get(module.parent, 0) + sign
            if hosts[module.parent] <= 0:
                del hosts[module.parent]
        if module.status == P.QUEUED:
            if sign > 0:
                self.queued[module.uuid] = module
            else:
                self.queued.pop(module.uuid, None)
        if module.status == P.EXITING:
            if sign > 0:
                self.exiting[module.uuid] = time.monotonic()
            else:
                self.exiting.pop(module.uuid, None)

    def transition(self, module: Module, status: str, parent: str | None, reason: str) -> None:
        self._account(module, -1)
        module.status = status
        module.parent = parent
        module.updated_at = utc_now()
        self._account(module, +1)
        self.record(module, reason)
        self.version += 1

    def record(self, module: Module, reason: str) -> None:
        event = Event(module.updated_at, module.status, module.parent, reason)
        module.history.append(event)
        if len(module.history) > HISTORY_IN_MEMORY:
            del module.history[0]
        self.changes.events.append((module.uuid, event))
        self.changes.modules[module.uuid] = module

    def new_module(self, uuid: str) -> Module:
        module = Module(index=self.next_index, uuid=uuid)
        self.next_index += 1
        return module

    def add_module(self, module: Module) -> None:
        old = self.modules.get(module.uuid)
        if old is not None:
            self._account(old, -1)
        self.modules[module.uuid] = module
        self._account(module, +1)

    def touch_runtime(self, runtime: Runtime) -> None:
        self.changes.runtimes[runtime.uuid] = runtime
        self.changes.touched.add(runtime.uuid)
        self.version += 1
        self.runtime_epoch += 1

    def send(self, topic: str, payload: Any) -> None:
        self.outbox.append((topic, payload))

    def send_to_runtime(self, runtime: str, action: str, data: dict) -> None:
        self.send(self.topics.runtime_control(runtime), P.envelope(action, data))

    def error(self, exc: P.ProtocolError) -> None:
        self.send(self.topics.log, P.error(exc))

    def take(self) -> tuple[Changes, list[tuple[str, Any]]]:
        changes, outbox = self.changes, self.outbox
        self.changes, self.outbox = Changes(), []
        return changes, outbox

    # -- lookups -------------------------------------------------------------------

    def runtime_by_ref(self, ref: Any) -> Runtime:
        """By name (alive first), then uuid, as SilverLine's messages name runtimes."""
        if not isinstance(ref, str) or not ref:
            raise P.InvalidArgument("runtime", ref)
        named = [r for r in self.runtimes.values() if r.name == ref]
        if named:
            return sorted(named, key=lambda r: (not r.alive, r.uuid))[0]
        runtime = self.runtimes.get(ref)
        if runtime is None:
            raise P.UUIDNotFound(ref, "runtime")
        return runtime

    def module_by_ref(self, ref: Any) -> Module:
        """By uuid, then by name (a live one first), for delete and exited."""
        if not isinstance(ref, str) or not ref:
            raise P.InvalidArgument("module", ref)
        module = self.modules.get(ref)
        if module is not None:
            return module
        named = [m for m in self.modules.values() if m.name == ref]
        if not named:
            raise P.UUIDNotFound(ref, "module")
        return sorted(named, key=lambda m: (m.status == P.DEAD, -m.index))[0]

    def modules_on(self, runtime: str, *statuses: str) -> list[Module]:
        """The runtime's modules in ``statuses``, in the order they were created
        (every keepalive asks: from the index, not a scan of every module)."""
        found = [m for m in self.hosted.get(runtime, {}).values() if m.status in statuses]
        return sorted(found, key=lambda m: m.index)
