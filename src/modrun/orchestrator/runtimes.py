"""Runtimes and managers: registration, keepalives, death and revival.

A runtime is dead on its Last Will (a ``delete`` on its registration topic)
or when no keepalive arrived for the keepalive timeout. Its modules then
follow their restart policy (moved to live runtimes, keeping their uuid) or
wait, killed (K), for it to come back. Keepalives also reconcile: a module the
runtime reports but no longer owns (moved while it was away) is deleted on it,
so nothing runs twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from modrun.db.times import utc_now
from modrun.fleet import protocol as P
from modrun.orchestrator.fleet import Fleet
from modrun.orchestrator.modules import ModuleControl
from modrun.orchestrator.node_urls import Network, checked_node_url
from modrun.orchestrator.scheduler import load_share
from modrun.orchestrator.state import Manager, Runtime

log = logging.getLogger("modrun.orchestrator")

PERSIST_KEEPALIVE_EVERY = 10.0
"""Seconds between database writes of a runtime's last keepalive time."""
RESEND_AFTER = 5.0


class RuntimeControl:
    def __init__(
        self,
        fleet: Fleet,
        modules: ModuleControl,
        ka_interval: float,
        ka_timeout: float,
        node_networks: Sequence[Network] = (),
    ) -> None:
        self.fleet = fleet
        self.node_networks = node_networks
        self.modules = modules
        self.ka_interval = ka_interval
        self.ka_timeout = ka_timeout
        self._persisted: dict[str, float] = {}
        self._resent: dict[tuple[str, str], float] = {}
        self.arrived: float | None = None  # when the message being handled arrived (the control loop sets it)
        moment = time.monotonic()
        for runtime in fleet.runtimes.values():
            runtime.last_seen = moment  # after a restart every runtime gets a full timeout to speak

    # -- registration ----------------------------------------------------------------

    def register(self, msg: P.Message) -> None:
        data = msg.data if isinstance(msg.data, dict) else None
        if data is None:
            raise P.InvalidArgument("data", msg.data)
        kind = data.get("type")
        match (msg.action, kind):
            case ("create", "runtime"):
                try:
                    runtime = self._create_runtime(data, msg.topic)
                except P.ProtocolError as exc:  # told to the runtime too, not only to the log topic
                    self.fleet.send(msg.topic, P.response(msg, exc.payload(), ok=False))
                    raise
                self.fleet.send(msg.topic, P.response(msg, runtime.detail()))
            case ("delete", "runtime"):
                runtime = self.fleet.runtime_by_ref(_uuid_of(data, msg.topic))
                if _stale_will(runtime, data):
                    log.info(
                        "runtime %s: the Last Will of a connection it has replaced, ignored", runtime.name
                    )
                elif runtime.alive:
                    self.die(runtime, "deregistered (delete request or Last Will)")
            case ("create", "manager"):
                manager = self._create_manager(data, msg.topic)
                self.fleet.send(msg.topic, P.response(msg, vars(manager)))
            case ("delete", "manager"):
                self._delete_manager(_uuid_of(data, msg.topic))
            case _:
                raise P.InvalidArgument("action/type", [msg.action, kind])

    def _create_runtime(self, data: dict, topic: str) -> Runtime:
        uuid = _uuid_of(data, topic)
        name = data.get("name", "runtime")
        if not isinstance(name, str) or not name:
            raise P.InvalidArgument("name", name)
        max_nmodules = data.get("max_nmodules", 0)
        if not isinstance(max_nmodules, int) or isinstance(max_nmodules, bool) or max_nmodules < 0:
            raise P.InvalidArgument("max_nmodules", max_nmodules)
        apis = data.get("apis", ["wasm", "wasi"])
        if not isinstance(apis, list) or not all(isinstance(a, str) for a in apis):
            raise P.InvalidArgument("apis", apis)
        metadata = self._checked_metadata(data.get("metadata"))
        runtime = self.fleet.runtimes.get(uuid)
        revived = runtime is not None
        if runtime is None:
            runtime = Runtime(uuid=uuid)
            self.fleet.runtimes[uuid] = runtime
        runtime.name = name
        runtime.runtime_type = str(data.get("runtime_type", runtime.runtime_type))
        runtime.max_nmodules = max_nmodules
        runtime.apis = list(apis)
        runtime.platform = data.get("platform", runtime.platform)
        runtime.metadata = metadata if metadata is not None else runtime.metadata
        parent = data.get("parent")
        runtime.parent = parent if isinstance(parent, str) and parent in self.fleet.managers else None
        runtime.ka_interval_sec = self.ka_interval
        self._alive(runtime)
        log.info("runtime %s %s (%s)", runtime.name, "re-registered" if revived else "registered", uuid)
        for module in self.fleet.modules_on(uuid, P.KILLED):
            module.retry_at = 0.0
            self.fleet.transition(module, P.QUEUED, uuid, f"runtime {runtime.name} is back")
        if revived and isinstance(data.get("children"), list):
            self._restore_children(runtime, data["children"])
        self.modules.place_queued()
        return runtime

    def _checked_metadata(self, metadata: object) -> object:
        """The registration's metadata, its ``url`` (where the gateway will send
        callers) checked: a runtime that registers a bad one is refused."""
        if not isinstance(metadata, dict) or "url" not in metadata:
            return metadata
        try:
            url = checked_node_url(metadata["url"], self.node_networks)
        except ValueError as exc:
            raise P.InvalidArgument(f"metadata.url ({exc})", metadata["url"]) from None
        return {**metadata, "url": url}

    def _restore_children(self, runtime: Runtime, children: list) -> None:
        """A runtime that registers again says what it still runs: plugins it
        lost are sent again, commands it lost follow their restart policy."""
        running = {c.get("uuid") for c in children if isinstance(c, dict)}
        for module in self.fleet.modules_on(runtime.uuid, P.ALIVE):
            if module.uuid in running:
                continue
            if module.kind == "plugin":
                self.fleet.record(module, f"runtime {runtime.name} registered again without it: sent again")
                self.fleet.send_to_runtime(runtime.uuid, "create", module.spec())
            else:
                why = f"runtime {runtime.name} restarted and lost it"
                self.modules.after_failure(module, why, failed=True, runtime_lost=False)

    def _alive(self, runtime: Runtime) -> None:
        runtime.status = P.ALIVE
        runtime.last_seen = max(runtime.last_seen, self._heard())
        runtime.ka_ts = runtime.updated_at = utc_now()
        self._persisted[runtime.uuid] = runtime.last_seen
        self.fleet.touch_runtime(runtime)

    def _create_manager(self, data: dict, topic: str) -> Manager:
        uuid = _uuid_of(data, topic)
        name = data.get("name", "manager")
        manager = Manager(uuid, name if isinstance(name, str) else "manager")
        self.fleet.managers[uuid] = manager
        self.fleet.changes.managers[uuid] = manager
        return manager

    def _delete_manager(self, uuid: str) -> None:
        manager = self.fleet.managers.get(uuid)
        if manager is None:
            raise P.UUIDNotFound(uuid, "manager")
        manager.status = P.DEAD
        self.fleet.changes.managers[uuid] = manager
        for runtime in list(self.fleet.runtimes.values()):
            if runtime.parent == uuid and runtime.alive:
                self.die(runtime, f"its manager {manager.name} exited")

    # -- death -----------------------------------------------------------------------

    def die(self, runtime: Runtime, reason: str) -> None:
        runtime.status = P.DEAD
        runtime.updated_at = utc_now()
        runtime.functions = []
        runtime.graphql = frozenset()
        self.fleet.touch_runtime(runtime)
        log.warning("runtime %s (%s) is dead: %s", runtime.name, runtime.uuid, reason)
        why = f"runtime {runtime.name} dead: {reason}"
        for module in self.fleet.modules_on(runtime.uuid, P.ALIVE, P.EXITING, P.QUEUED):
            if module.status == P.EXITING:
                self.fleet.transition(module, P.DEAD, module.parent, f"deleted; {why}")
            elif module.status == P.QUEUED:
                if module.pinned:
                    self.fleet.transition(module, P.KILLED, module.parent, why)
            elif module.pinned:
                self.fleet.transition(module, P.KILLED, module.parent, why)
            else:
                self.modules.after_failure(module, why, failed=True, runtime_lost=False)
        self.modules.place_queued()

    def _heard(self) -> float:
        """When the runtime spoke: its message's arrival, not its handling (a
        control loop that runs behind must not make its runtimes look late)."""
        return self.arrived if self.arrived is not None else time.monotonic()

    def check_liveness(self, moment: float | None = None) -> None:
        """Runtimes silent for the keepalive timeout as of ``moment``: the
        arrival of the newest message handled while others still wait (the
        loop's own timeline), now when none does."""
        moment = time.monotonic() if moment is None else moment
        for runtime in list(self.fleet.runtimes.values()):
            if runtime.alive and moment - runtime.last_seen > self.ka_timeout:
                self.die(runtime, f"no keepalive for {moment - runtime.last_seen:.1f} s")

    # -- keepalive -------------------------------------------------------------------

    def keepalive(self, msg: P.Message) -> None:
        data = msg.data if isinstance(msg.data, dict) else None
        if data is None:
            raise P.InvalidArgument("data", msg.data)
        uuid = _uuid_of(data, msg.topic)
        runtime = self.fleet.runtimes.get(uuid)
        if runtime is None:
            raise P.UUIDNotFound(uuid, "runtime")
        if not runtime.alive:
            log.warning("runtime %s (%s) speaks again: alive", runtime.name, uuid)
            self._alive(runtime)
            self.modules.place_queued()
        moment = self._heard()
        runtime.ka_ts = utc_now()
        take_report(self.fleet, runtime, data, moment)
        if isinstance(data.get("children"), list):
            self._reconcile(runtime, moment)
        if moment - self._persisted.get(uuid, 0.0) > PERSIST_KEEPALIVE_EVERY:
            self._persisted[uuid] = moment
            self.fleet.changes.runtimes[uuid] = runtime

    def _reconcile(self, runtime: Runtime, moment: float) -> None:
        reported = {c.get("uuid") for c in runtime.children}
        for uuid in reported:
            module = self.fleet.modules.get(uuid) if isinstance(uuid, str) else None
            owned = (
                module is not None and module.parent == runtime.uuid and module.status in (P.ALIVE, P.EXITING)
            )
            if not owned and isinstance(uuid, str) and self._due((runtime.uuid, uuid), moment):
                log.info("runtime %s runs module %s it no longer owns: deleting it there", runtime.name, uuid)
                self.fleet.send_to_runtime(runtime.uuid, "delete", {"type": "module", "uuid": uuid})
        if runtime.runtime_type != "modrun":
            return  # only modrun nodes are known to list every child
        grace = max(2 * self.ka_interval, RESEND_AFTER)
        for module in self.fleet.modules_on(runtime.uuid, P.ALIVE):
            if (
                module.uuid not in reported
                and module.kind == "plugin"
                and (utc_now() - module.updated_at).total_seconds() > grace
                and self._due((runtime.uuid, module.uuid), moment)
            ):
                self.fleet.record(module, f"runtime {runtime.name} does not run it: create sent again")
                self.fleet.send_to_runtime(runtime.uuid, "create", module.spec())

    def _due(self, key: tuple[str, str], moment: float) -> bool:
        """Resend at most every RESEND_AFTER seconds per (runtime, module)."""
        if moment - self._resent.get(key, -RESEND_AFTER) < RESEND_AFTER:
            return False
        if len(self._resent) > 10_000:  # forget what is past its quiet period
            self._resent = {k: t for k, t in self._resent.items() if moment - t < RESEND_AFTER}
        self._resent[key] = moment
        return True


def take_report(fleet: Fleet, runtime: Runtime, data: dict, moment: float) -> None:
    """What a keepalive tells of a runtime (its load, children and the functions
    the gateway routes to); the leader and its followers read it alike."""
    runtime.last_seen = max(runtime.last_seen, moment)  # a message replayed at a takeover is older
    runtime.reported = True
    if isinstance(data.get("load"), dict):
        runtime.load = data["load"]
        share = load_share(runtime.load)
        if share != runtime.load_share:
            runtime.load_share = share
            fleet.on_score(runtime.uuid)
    children = data.get("children")
    if isinstance(children, list):
        runtime.children = [c for c in children if isinstance(c, dict)]
    functions = data.get("functions")
    if isinstance(functions, list) and functions != runtime.functions:
        runtime.functions = [f for f in functions if isinstance(f, dict) and isinstance(f.get("name"), str)]
        fleet.version += 1
    fields = data.get("graphql")
    if isinstance(fields, list):
        graphql = frozenset(f for f in fields if isinstance(f, str))
        if graphql != runtime.graphql:
            runtime.graphql = graphql
            fleet.version += 1


def observe_keepalive(fleet: Fleet, msg: P.Message, moment: float) -> None:
    """A follower's use of a keepalive: the report only (the leader judges)."""
    data = msg.data if isinstance(msg.data, dict) else None
    if data is None or not msg.is_request:
        return
    runtime = fleet.runtimes.get(msg.topic.rsplit("/", 1)[-1])
    if runtime is not None and runtime.alive and data.get("uuid", runtime.uuid) == runtime.uuid:
        runtime.ka_ts = utc_now()
        take_report(fleet, runtime, data, moment)


def _stale_will(runtime: Runtime, data: dict) -> bool:
    """A Last Will naming a connection other than the one the runtime last
    registered on: a broker cluster that lost a member publishes the wills of
    its clients, some of which are already back on another member."""
    meta = runtime.metadata if isinstance(runtime.metadata, dict) else {}
    will, current = data.get("connection"), meta.get("connection")
    return isinstance(will, str) and isinstance(current, str) and will != current


def _uuid_of(data: dict, topic: str) -> str:
    """The runtime a registration or keepalive is about: the one its topic names
    (a secured fleet's broker lets a node publish only on its own). A payload
    that names another is refused, never obeyed."""
    uuid = topic.rsplit("/", 1)[-1]
    given = data.get("uuid", uuid)
    if given != uuid:
        raise P.InvalidArgument("uuid (not the runtime of this topic)", given)
    if not uuid or "+" in uuid or "#" in uuid:
        raise P.InvalidArgument("uuid", uuid)
    return uuid
