"""Modules: create, place, queue, delete, exit, restart.

Placement: an explicit ``parent`` (name, then uuid) pins a module to that
runtime; otherwise the policy picks among runtimes that are alive, whose
``apis`` cover the module's and that have a free slot. With none free the
module is queued (Q) and placed when room appears. On exit or runtime death
the module's ``restart`` policy decides: ``always`` (default for Extism
plugins), ``on-failure``, ``never`` (default for WASI commands). A restarted
module keeps its uuid; repeated failures back off (0.5 s doubling to 30 s).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

from modrun.db.times import utc_now
from modrun.fleet import labels as label_rules
from modrun.fleet import protocol as P
from modrun.orchestrator.fleet import Fleet
from modrun.orchestrator.load_index import LoadIndex
from modrun.orchestrator.scheduler import Policy
from modrun.orchestrator.state import DEFAULT_APIS, RESTART_POLICIES, Module, Runtime
from modrun.wasm.command import channel_path

log = logging.getLogger("modrun.orchestrator")

MODRUN_RUNTIME = "modrun"
FAULT_CRASH = {"restart": "on-failure", "ignore": "never"}
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
FAILURE_REASONS = {"trap", "limit", "error", "timeout"}

FileLookup = Callable[[str], tuple[str, str] | None]
"""file path -> (sha256, kind) when the file is in the orchestrator's store."""


class ModuleControl:
    def __init__(self, fleet: Fleet, policy: Policy, lookup_file: FileLookup) -> None:
        self.fleet = fleet
        self.policy = policy
        self.lookup_file = lookup_file
        self._eligible: dict[tuple, list[Runtime]] = {}  # what could ever take a kind of module
        self._epoch = -1  # the fleet's runtime_epoch they were worked out at
        self.index = LoadIndex(fleet.counts) if policy.indexed else None
        if self.index is not None:
            fleet.on_score = self.index.changed

    # -- create -------------------------------------------------------------------

    def create(self, data: Any, parent_override: str | None = None) -> Module:
        if not isinstance(data, dict):
            raise P.InvalidArgument("data", data)
        module_id = data.get("uuid")
        if module_id is not None and (not isinstance(module_id, str) or not module_id.strip()):
            raise P.InvalidArgument("uuid", module_id)
        existing = self.fleet.modules.get(module_id) if module_id else None
        if existing is not None and existing.status != P.DEAD:
            raise P.DuplicateUUID(module_id, "module")
        module = self.fleet.new_module(module_id or _uuid())
        if existing is not None:
            module.index, module.restarts = existing.index, 0
            module.history = existing.history
        self._fill(module, data)
        parent_ref = parent_override or data.get("parent")
        target: Runtime | None = None
        if parent_ref not in (None, ""):
            target = self.fleet.runtime_by_ref(parent_ref)
            module.pinned = True
            if target.runtime_type == MODRUN_RUNTIME and module.sha256 is None:
                raise P.FileNotFound(module.file)
        elif not self._could_ever(module):
            if module.sha256 is None and self._could_ever(module, ignore_file=True):
                raise P.FileNotFound(module.file)
            raise P.NoSuitableRuntime({"name": module.name, "apis": module.apis})
        module.status = ""  # not yet placed: transition() below records the first state
        self.fleet.add_module(module)
        self._place(module, target, "created")
        return module

    def _fill(self, module: Module, data: dict) -> None:
        file = data.get("file", data.get("filename"))
        if file is None:
            raise P.MissingField("data", "file")
        if not isinstance(file, str) or not file:
            raise P.InvalidArgument("file", file)
        module.file = file
        name = data.get("name", "module")
        if not isinstance(name, str) or not name or len(name) > 255:
            raise P.InvalidArgument("name", name)
        module.name = name
        apis = data.get("apis", DEFAULT_APIS)
        if not isinstance(apis, list) or not all(isinstance(a, str) for a in apis):
            raise P.InvalidArgument("apis", apis)
        module.apis = list(apis)
        args = data.get("args", [])
        if not isinstance(args, dict | list):
            raise P.InvalidArgument("args", args)
        if isinstance(args, dict):
            for key in ("argv", "env"):
                value = args.get(key, [])
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise P.InvalidArgument(f"args/{key}", value)
        module.args = args
        channels = data.get("channels", [])
        if not isinstance(channels, list) or not all(_channel_ok(c) for c in channels):
            raise P.InvalidArgument("channels", channels)
        module.channels = channels
        known = self.lookup_file(file)
        module.sha256, module.kind = known if known else (None, "unknown")
        wanted_kind = args.get("kind") if isinstance(args, dict) else None
        if wanted_kind is not None:
            if wanted_kind not in ("plugin", "wasi", "bundle"):
                raise P.InvalidArgument("args/kind", wanted_kind)
            module.kind = wanted_kind
        restart = data.get("restart")
        if restart is None and "fault_crash" in data:
            restart = FAULT_CRASH.get(data["fault_crash"], data["fault_crash"])
        if restart is None:
            restart = "always" if module.kind == "plugin" else "never"
        if restart not in RESTART_POLICIES:
            raise P.InvalidArgument("restart", restart)
        module.restart = restart
        group = data.get("group")
        if group is not None and (not isinstance(group, str) or not group):
            raise P.InvalidArgument("group", group)
        module.group = group
        try:
            module.labels = label_rules.checked(data.get("labels") or {})
        except label_rules.BadLabel as exc:
            raise P.InvalidArgument("labels", str(exc)) from None

    def create_batch(self, data: Any) -> list[Module]:
        if not isinstance(data, dict):
            raise P.InvalidArgument("data", data)
        items = data.get("modules")
        if not isinstance(items, list):
            raise P.MissingField("data", "modules")
        parent = data.get("parent")
        created = []
        for item in items:
            try:
                created.append(self.create(item, parent_override=parent))
            except P.ProtocolError as exc:  # one bad module does not sink the batch
                self.fleet.error(exc)
        return created

    # -- placement -----------------------------------------------------------------

    def _fitting(
        self, module: Module, ignore_capacity: bool = False, ignore_file: bool = False
    ) -> list[Runtime]:
        counts = self.fleet.counts
        taken = self._group_hosts(module)
        return [
            r
            for r in self._could_take(module, ignore_file)
            if r.uuid not in taken
            and (ignore_capacity or r.max_nmodules <= 0 or counts.get(r.uuid, 0) < r.max_nmodules)
        ]

    @staticmethod
    def _kind(module: Module, ignore_file: bool) -> tuple:
        """What decides which runtimes could take a module: its apis, labels and file."""
        file_ok = ignore_file or module.sha256 is not None
        return (frozenset(module.apis), _labels_key(module.labels), file_ok)

    def _could_ever(self, module: Module, ignore_file: bool = False) -> bool:
        """Some runtime could take the module once it has room (stops at the first)."""
        taken = self._group_hosts(module)
        return any(r.uuid not in taken for r in self._could_take(module, ignore_file))

    def _could_take(self, module: Module, ignore_file: bool) -> list[Runtime]:
        """Live runtimes whose apis, labels and kind suit the module: the same for
        every module of its kind until a runtime changes, so worked out once
        per kind (a burst of 10,000 creates is one scan, not 10,000)."""
        if self._epoch != self.fleet.runtime_epoch:
            self._eligible.clear()
            if self.index is not None:
                self.index.clear()
            self._epoch = self.fleet.runtime_epoch
        file_ok = ignore_file or module.sha256 is not None
        key = self._kind(module, ignore_file)
        found = self._eligible.get(key)
        if found is None:
            wanted = set(module.apis)
            found = [
                r
                for r in self.fleet.runtimes.values()
                if r.alive
                and wanted.issubset(r.apis)
                and label_rules.matches(r.labels, module.labels)
                and (file_ok or r.runtime_type != MODRUN_RUNTIME)
            ]
            self._eligible[key] = found
        return found

    def _group_hosts(self, module: Module) -> set[str]:
        """Runtimes already running another module of the module's group."""
        if module.group is None:
            return set()
        hosts = self.fleet.group_hosts.get(module.group, {})  # kept as modules change state
        taken = set(hosts)
        if module.status in (P.ALIVE, P.EXITING) and module.parent and hosts.get(module.parent) == 1:
            taken.discard(module.parent)  # only the module itself runs there
        return taken

    def _place(self, module: Module, target: Runtime | None, reason: str) -> bool:
        """Start ``module`` on ``target`` (pinned) or where the policy says;
        queue it when nothing fits now. True when placed."""
        if target is None and module.pinned and module.parent:
            target = self.fleet.runtimes.get(module.parent)
        if module.pinned:
            if target is not None and target in self._fitting(module):
                return self._start(module, target, reason)
            self._queue(module, target.uuid if target else None, reason)
            return False
        chosen = self._choose(module)
        if chosen is None:
            self._queue(module, None, reason)
            return False
        return self._start(module, chosen, reason)

    def _choose(self, module: Module) -> Runtime | None:
        """The runtime the policy picks among those that fit now."""
        if self.index is None:
            candidates = self._fitting(module)
            return self.policy.choose(candidates, self.fleet.counts) if candidates else None
        eligible = self._could_take(module, ignore_file=False)
        key = self._kind(module, ignore_file=False)
        if not self.index.tracks(key):
            self.index.track(key, eligible)
        taken = self._group_hosts(module)
        counts = self.fleet.counts

        def fits(r: Runtime) -> bool:
            return r.uuid not in taken and (r.max_nmodules <= 0 or counts.get(r.uuid, 0) < r.max_nmodules)

        return self.index.best(key, fits)

    def _start(self, module: Module, runtime: Runtime, reason: str) -> bool:
        self.fleet.transition(module, P.ALIVE, runtime.uuid, f"{reason}: placed on {runtime.name}")
        self.fleet.send_to_runtime(runtime.uuid, "create", module.spec())
        return True

    def _queue(self, module: Module, parent: str | None, reason: str) -> None:
        if module.status == P.QUEUED and module.parent == parent:
            return
        self.fleet.transition(module, P.QUEUED, parent, f"{reason}: queued, no runtime has room")

    def place_queued(self) -> None:
        """Try every queued module whose backoff has passed, oldest first."""
        if not self.fleet.queued:
            return
        moment = time.monotonic()
        for module in sorted(self.fleet.queued.values(), key=lambda m: m.index):
            if module.retry_at <= moment and module.status == P.QUEUED:
                target = self.fleet.runtimes.get(module.parent) if module.pinned and module.parent else None
                if module.pinned or self._fitting(module):
                    self._place(module, target, "dequeued")

    # -- delete and exit -------------------------------------------------------------

    def delete(self, ref: Any) -> Module:
        module = self.fleet.module_by_ref(ref)
        runtime = self.fleet.runtimes.get(module.parent) if module.parent else None
        if module.status in (P.ALIVE, P.EXITING) and runtime is not None and runtime.alive:
            if module.status == P.ALIVE:
                self.fleet.transition(module, P.EXITING, module.parent, "delete requested")
            self.fleet.send_to_runtime(runtime.uuid, "delete", {"type": "module", "uuid": module.uuid})
        elif module.status != P.DEAD:
            self.fleet.transition(module, P.DEAD, module.parent, "deleted")
            self.place_queued()
        return module

    def exited(self, data: Any, runtime: str | None = None) -> Module:
        """A module ended. ``runtime``: the runtime whose own topic it came on, which
        may speak only for modules placed on it (None: the shared control topic,
        which a secured fleet's broker lets no node publish on)."""
        if not isinstance(data, dict):
            raise P.InvalidArgument("data", data)
        if "uuid" not in data:
            raise P.MissingField("data", "uuid")
        module = self.fleet.module_by_ref(data["uuid"])
        if runtime is not None and (module.uuid != data["uuid"] or module.parent != runtime):
            raise P.UUIDNotFound(data["uuid"], "module placed on this runtime")
        code = data.get("exit_code", data.get("code"))
        module.exit_code = code if isinstance(code, int) else None
        reason = data.get("reason") if isinstance(data.get("reason"), str) else "exit"
        message = data.get("message") if isinstance(data.get("message"), str) else None
        duration = data.get("duration_sec")
        summary = f"exited ({reason}" + (f", code {module.exit_code}" if module.exit_code is not None else "")
        summary += f", {duration:.3f} s)" if isinstance(duration, int | float) else ")"
        if message:
            summary += f": {message}"
            module.last_error = message
        failed = (module.exit_code not in (0, None)) or reason in FAILURE_REASONS
        if module.status == P.EXITING:
            self.fleet.transition(module, P.DEAD, module.parent, f"deleted; {summary}")
        elif module.status == P.ALIVE:
            self.after_failure(module, summary, failed, runtime_lost=False)
        else:
            self.fleet.record(module, summary)
        self.place_queued()
        return module

    def after_failure(self, module: Module, summary: str, failed: bool, runtime_lost: bool) -> None:
        """A running module stopped (it exited, or its runtime died): restart it per its policy."""
        restart = module.restart == "always" or (module.restart == "on-failure" and failed)
        if not restart:
            status = P.KILLED if runtime_lost else P.DEAD
            self.fleet.transition(module, status, module.parent, summary)
            return
        if runtime_lost:
            module.retry_at = 0.0  # the module did nothing wrong: move it now
        else:
            module.retry_at = time.monotonic() + min(
                BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(module.restarts, 10)
            )
        module.restarts += 1
        module.updated_at = utc_now()
        parent = module.parent if module.pinned else None
        self.fleet.transition(module, P.QUEUED, parent, f"{summary}; restart ({module.restart})")

    def confirm_stale_deletes(self, timeout: float) -> None:
        """A runtime that never confirms a delete (no ``exited``) is not waited for forever."""
        moment = time.monotonic()
        for uuid, since in list(self.fleet.exiting.items()):
            if moment - since > timeout:
                module = self.fleet.modules[uuid]
                self.fleet.transition(module, P.DEAD, module.parent, "deleted; the runtime never confirmed")


def _channel_ok(channel: Any) -> bool:
    if not (
        isinstance(channel, dict)
        and isinstance(channel.get("path"), str)
        and isinstance(channel.get("topic"), str)
        and channel.get("mode", "rw") in ("r", "w", "rw")
    ):
        return False
    path = channel["path"]
    if not path.startswith("/") or path in ("/stdin", "/stdout", "/stderr"):
        return True  # a stream, or (relative) no file at all
    try:
        channel_path(path)  # a file channel may not climb out of the module's scratch
    except ValueError:
        return False
    return True


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())


def _labels_key(labels: dict) -> Hashable:
    """The same for equal label requirements; cheap for the usual few plain
    labels (every create asks), exact for any JSON."""
    if not labels:
        return ()
    key = tuple(sorted(labels.items()))
    try:
        hash(key)
    except TypeError:  # values that are lists or objects
        return json.dumps(labels, sort_keys=True)
    return key
