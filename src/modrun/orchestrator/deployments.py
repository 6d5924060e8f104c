"""Deployments made so on the fleet: the reconciler (the control plane's ``DeploymentFleet``).

A reconcile loop (on every change and every 2 s) reads the desired state
(``control.deployments.DeploymentStore``) and makes the fleet match through the
orchestrator's own modules: each replica is a plugin module of group
``deploy:<artifact>:v<N>`` (``fleet.groups``; replicas of one version never share
a runtime). Changing the version is a rolling update: the new version's replicas
start beside the old ones, and an old replica is deleted only when a new one
serves its functions, so the gateway always has a replica to call. Moves after
failover and new runtimes (daemon) are repaired the same way.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from modrun.control.deployments import DAEMON, Deployment, DeploymentStore, replicas_out
from modrun.db.tables import deployments
from modrun.fleet import labels as label_rules
from modrun.fleet import protocol as P
from modrun.fleet.groups import group_of, group_prefix, version_of_group

if TYPE_CHECKING:
    from modrun.control.artifacts import Artifacts
    from modrun.orchestrator.engine import ControlLoop
    from modrun.orchestrator.files import FileStore
    from modrun.orchestrator.fleet import Fleet
    from modrun.orchestrator.output import ModuleOutput
    from modrun.orchestrator.state import Module

log = logging.getLogger("modrun.deploy")

INTERVAL = 2.0  # seconds between reconciles when nothing wakes the reconciler
MIN_GAP = 0.1  # seconds at least between two, however often the fleet changes
FAILED_AFTER = 3  # restarts of a new replica before the deployment is failed
API = "extism"  # what a runtime must offer to serve plugin artifacts


class Reconciler:
    def __init__(
        self,
        store: DeploymentStore,
        artifacts: Artifacts,
        files: FileStore,
        control: ControlLoop,
        output: ModuleOutput | None = None,
        operators: Callable[[uuid.UUID], bool] = lambda _artifact: False,
    ) -> None:
        self.store = store
        self.operators = operators  # is the artifact an operator's (its owner an admin)?
        self.engine = store.engine
        self.output = output
        self.artifacts = artifacts
        self.files = files
        self.control = control
        self._status: dict[uuid.UUID, dict] = {}
        self._serving: dict[uuid.UUID, set[str]] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="modrun-deploy", daemon=True)
        control.watchers.append(self._wake.set)  # what runs or serves changed: look again now

    # -- desired state ----------------------------------------------------------------

    # -- what is -------------------------------------------------------------------------

    def status(self, artifact_id: uuid.UUID) -> dict | None:
        with self._lock:
            return self._status.get(artifact_id)

    def changed(self) -> None:
        self._wake.set()

    def removed(self, artifact_id: uuid.UUID) -> None:
        for module in self._modules(artifact_id):
            self._delete(module.uuid)
        with self._lock:
            self._status.pop(artifact_id, None)
        self._wake.set()

    def logs(self, artifact_id: uuid.UUID) -> list[dict]:
        """Every state change of every replica with the runtimes' error messages,
        and what the replicas printed: log lines and call errors (``stream``)."""
        entries = []
        for module in self._modules(artifact_id, include_dead=True):
            version = version_of_group(module.group)
            for event in module.history:
                entries.append({"module": module.uuid, "version": version} | event.as_dict())
            if self.output is not None:
                for line in self.output.of(module.uuid):
                    entries.append({"module": module.uuid, "version": version} | line)
        return sorted(entries, key=lambda e: e["at"])

    # -- reconciling -----------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(INTERVAL)
            self._wake.clear()
            act = self.control.leading  # a follower works out the status only: the leader acts
            for deployment in self._safe_all():
                try:
                    self.reconcile(deployment, act)
                except Exception:  # one deployment's trouble never stops the others
                    log.exception("reconciling deployment of %s failed", deployment.artifact_id)
            self._stop.wait(MIN_GAP)

    def _safe_all(self) -> list[Deployment]:
        try:
            return self.store.all()
        except Exception as exc:
            log.error("cannot read deployments: %s", exc)
            return []

    def reconcile(self, deployment: Deployment, act: bool = True) -> None:
        artifact_id, version = deployment.artifact_id, deployment.version
        group = group_of(artifact_id, version)
        detail = self.artifacts.detail(artifact_id)
        name, kind = detail["name"], detail["type"]
        path = self._ensure_file(artifact_id, version, kind) if act else ""
        modules = [m for m in self._modules(artifact_id) if m.status != P.EXITING]
        new = [
            m
            for m in modules
            if m.group == group and m.labels == deployment.labels and _limits_of(m) == deployment.limits
        ]
        old = [m for m in modules if m not in new]
        wanted = (
            deployment.replicas if deployment.replicas != DAEMON else self.runtime_count(deployment.labels)
        )
        errors, warnings = [], []
        for _ in range(max(0, wanted - len(new)) if act else 0):
            try:
                created = self._create(name, path, group, deployment, kind)
                new.append(created)
            except P.ProtocolError as exc:
                warnings.append(f"replica not placed: {exc.desc}")
                break
        surplus = max(0, len(new) - wanted) if act else 0
        for extra in sorted(new, key=lambda m: (m.status == P.ALIVE, -m.index))[:surplus]:
            self._delete(extra.uuid)
            new.remove(extra)
        serving = self._serving_modules()
        healthy = [m for m in new if m.uuid in serving]
        for module in sorted(old, key=lambda m: m.uuid not in serving)[
            : max(0, len(old) + len(healthy) - wanted) if act else 0
        ]:
            self._delete(module.uuid)
            old.remove(module)
        for module in new:
            if module.restarts >= FAILED_AFTER or module.status in (P.KILLED, P.DEAD):
                errors.append(f"replica {module.uuid}: {module.last_error or P.STATES.get(module.status)}")
        if act:
            self._note_serving(deployment, healthy)
        status = (
            "complete"
            if len(healthy) == wanted and not old
            else "in_progress"
            if healthy or old
            else "starting"
        )
        if errors:
            status = "failed"
        if wanted == 0:
            status = "stopped"
        if act and status == "complete" and deployment.last_good_version != version:
            with self.engine.begin() as conn:
                conn.execute(
                    deployments.update()
                    .where(deployments.c.artifact_id == artifact_id)
                    .values(last_good_version=version)
                )
                self.store.record(
                    conn, artifact_id, "reconciler", "complete", version, None, f"{wanted} replicas serve"
                )
        runtimes = self.control.snapshot(lambda fleet: {u: r.name for u, r in fleet.runtimes.items()})
        with self._lock:
            self._status[artifact_id] = {
                "status": status,
                "version": version,
                "replicas_wanted": replicas_out(deployment.replicas),
                "labels": deployment.labels,
                "limits": deployment.limits,
                "errors": errors,
                "warnings": warnings,
                "replicas": [
                    {
                        "module": m.uuid,
                        "node": runtimes.get(m.parent or "", None),
                        "version": version_of_group(m.group),
                        "state": "serving" if m.uuid in serving else P.STATES.get(m.status, m.status),
                    }
                    for m in sorted(new + old, key=lambda m: m.index)
                ],
            }

    def _note_serving(self, deployment: Deployment, healthy: list[Module]) -> None:
        seen = self._serving.setdefault(deployment.artifact_id, set())
        fresh = [m for m in healthy if m.uuid not in seen]
        if not fresh:
            return
        names = self.control.snapshot(lambda fleet: {u: r.name for u, r in fleet.runtimes.items()})
        with self.engine.begin() as conn:
            for module in fresh:
                seen.add(module.uuid)
                self.store.record(
                    conn,
                    deployment.artifact_id,
                    "reconciler",
                    "replica serving",
                    version_of_group(module.group),
                    names.get(module.parent or ""),
                    module.uuid,
                )

    # -- the fleet -----------------------------------------------------------------------

    def _modules(self, artifact_id: uuid.UUID, include_dead: bool = False) -> list[Module]:
        prefix = group_prefix(artifact_id)

        def pick(fleet: Fleet) -> list[Module]:
            return [
                m
                for m in fleet.modules.values()
                if m.group and m.group.startswith(prefix) and (include_dead or m.status != P.DEAD)
            ]

        return self.control.snapshot(pick)

    def _serving_modules(self) -> set[str]:
        """Modules whose functions a live runtime reports serving."""

        def collect(fleet: Fleet) -> set[str]:
            return {
                fn["module"]
                for r in fleet.runtimes.values()
                if r.alive
                for fn in r.functions
                if isinstance(fn.get("module"), str)
            }

        return self.control.snapshot(collect)

    def runtime_count(self, labels: dict[str, str]) -> int:
        return self.control.snapshot(
            lambda fleet: sum(
                1
                for r in fleet.runtimes.values()
                if r.alive and API in r.apis and label_rules.matches(r.labels, labels)
            )
        )

    def _create(self, name: str, path: str, group: str, deployment: Deployment, kind: str) -> Module:
        args: dict = {"kind": kind}  # plugin, or bundle (a whole app: agent/bundles.py)
        if not self.operators(deployment.artifact_id):
            args["tenant"] = True  # the node gives it none of its own connections and models
        if deployment.limits:
            args["limits"] = deployment.limits
        data = {
            "name": name,
            "file": path,
            "apis": [API],
            "restart": "always",
            "group": group,
            "labels": deployment.labels,
            "args": args,
        }
        return self.control.call(self.control.modules.create, data).result(30)

    def _delete(self, module: str) -> None:
        try:
            self.control.call(self.control.modules.delete, module).result(30)
        except P.ProtocolError:
            pass  # already gone

    def _ensure_file(self, artifact_id: uuid.UUID, version: int, kind: str) -> str:
        """The version (a plugin or a bundle) in the file store, where nodes fetch modules from."""
        path = f"artifacts/{artifact_id}/v{version}.{'wasm' if kind == 'plugin' else 'bundle'}"
        if self.files.info(path) is None:
            receiver = self.files.receiver()
            try:
                for chunk in self.artifacts.read(artifact_id, version):
                    receiver.write(chunk)
                self.files.commit(path, receiver.finish())
            except BaseException:
                receiver.abort()
                raise
        return path

    def forget(self, artifact_id: uuid.UUID) -> None:
        """Remove the copies of a deleted artifact's versions from the file store."""
        for info in self.files.list(f"artifacts/{artifact_id}/"):
            self.files.delete(info.path)


def _limits_of(module: Module) -> dict:
    args = module.args if isinstance(module.args, dict) else {}
    found = args.get("limits")
    return found if isinstance(found, dict) else {}
