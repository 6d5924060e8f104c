"""Declarative deployments: one per artifact, reconciled onto the fleet.

``POST /deploy/{artifact}`` records desired state (a version, a replica
count or ``daemon``: one on every modrun runtime). A reconcile loop (on every
change and every 2 s) makes the fleet match through the orchestrator's own
modules: each replica is a plugin module of group ``deploy:<artifact>:v<N>``
(replicas of one version never share a runtime). Changing the version is a
rolling update: the new version's replicas start beside the old ones, and an
old replica is deleted only when a new one serves its functions, so the
gateway always has a replica to call. Moves after failover and new runtimes
(daemon) are repaired the same way. Every change is in the history: what ran
where, when, deployed by whom.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.control.accounts import AccountError
from modrun.db.tables import deploy_history, deployments
from modrun.db.times import utc_now
from modrun.orchestrator import labels as label_rules
from modrun.orchestrator import protocol as P

if TYPE_CHECKING:
    from modrun.control.artifacts import Artifacts
    from modrun.orchestrator.engine import ControlLoop
    from modrun.orchestrator.files import FileStore
    from modrun.orchestrator.fleet import Fleet
    from modrun.orchestrator.output import ModuleOutput
    from modrun.orchestrator.state import Module

log = logging.getLogger("modrun.deploy")

INTERVAL = 2.0
DAEMON = -1
FAILED_AFTER = 3  # restarts of a new replica before the deployment is failed
API = "extism"  # what a runtime must offer to serve plugin artifacts


@dataclass
class Deployment:
    artifact_id: uuid.UUID
    version: int
    replicas: int
    deployed_by: str
    last_good_version: int | None
    labels: dict[str, str] = field(default_factory=dict)  # node labels every replica's node must have
    limits: dict = field(default_factory=dict)  # per-call limits: timeout (s), max_memory (bytes)


def group_prefix(artifact_id: uuid.UUID) -> str:
    return f"deploy:{artifact_id}:"


def group_of(artifact_id: uuid.UUID, version: int) -> str:
    return f"{group_prefix(artifact_id)}v{version}"


def artifact_of_group(group: str | None) -> str | None:
    """The artifact id a deployment's module group names, None for other modules."""
    if not group or not group.startswith("deploy:"):
        return None
    return group.split(":")[1]


class Deployer:
    def __init__(
        self,
        engine: Engine,
        artifacts: Artifacts,
        files: FileStore,
        control: ControlLoop,
        output: ModuleOutput | None = None,
    ) -> None:
        self.engine = engine
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

    # -- desired state ----------------------------------------------------------------

    def deploy(
        self,
        artifact_id: uuid.UUID,
        version: int,
        replicas: int,
        actor: str,
        labels: dict[str, str] | None = None,
        limits: dict | None = None,
    ) -> dict:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(deployments).where(deployments.c.artifact_id == artifact_id)).first()
            values = {
                "version": version,
                "replicas": replicas,
                "deployed_by": actor,
                "updated_at": utc_now(),
                "labels": labels or {},
                "limits": limits or {},
            }
            if row is None:
                conn.execute(
                    deployments.insert().values(artifact_id=artifact_id, last_good_version=None, **values)
                )
                event = "deploy"
            else:
                conn.execute(
                    deployments.update().where(deployments.c.artifact_id == artifact_id).values(**values)
                )
                event = "update" if row.version != version else "scale"
            self._record(conn, artifact_id, actor, event, version, None, _replicas_text(replicas))
        self._wake.set()
        return {
            "artifact_id": str(artifact_id),
            "version": version,
            "replicas": _replicas_out(replicas),
            "labels": labels or {},
            "limits": limits or {},
        }

    def rollback(self, artifact_id: uuid.UUID, actor: str) -> dict:
        current = self.get(artifact_id)
        if current is None:
            raise AccountError("not deployed", 404)
        target = self._previous_good(artifact_id, current.version)
        if target is None:
            raise AccountError("no earlier version of this deployment was ever complete", 422)
        with self.engine.begin() as conn:
            conn.execute(
                deployments.update()
                .where(deployments.c.artifact_id == artifact_id)
                .values(version=target, deployed_by=actor, updated_at=utc_now())
            )
            self._record(
                conn, artifact_id, actor, "rollback", target, None, f"from version {current.version}"
            )
        self._wake.set()
        return {
            "artifact_id": str(artifact_id),
            "version": target,
            "replicas": _replicas_out(current.replicas),
        }

    def undeploy(self, artifact_id: uuid.UUID, actor: str) -> None:
        with self.engine.begin() as conn:
            if not conn.execute(
                deployments.delete().where(deployments.c.artifact_id == artifact_id)
            ).rowcount:
                raise AccountError("not deployed", 404)
            self._record(conn, artifact_id, actor, "undeploy", None, None, None)
        for module in self._modules(artifact_id):
            self._delete(module.uuid)
        self._status.pop(artifact_id, None)
        self._wake.set()

    def get(self, artifact_id: uuid.UUID) -> Deployment | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(deployments).where(deployments.c.artifact_id == artifact_id)).first()
        return _deployment(row) if row else None

    def all(self) -> list[Deployment]:
        with self.engine.connect() as conn:
            return [_deployment(r) for r in conn.execute(sa.select(deployments))]

    def deployed(self, artifact_id: uuid.UUID) -> bool:
        return self.get(artifact_id) is not None

    # -- what is -------------------------------------------------------------------------

    def status(self, artifact_id: uuid.UUID) -> dict:
        deployment = self.get(artifact_id)
        if deployment is None:
            raise AccountError("not deployed", 404)
        with self._lock:
            known = self._status.get(artifact_id)
        return known or {
            "status": "not_started",
            "version": deployment.version,
            "replicas_wanted": _replicas_out(deployment.replicas),
            "errors": [],
            "warnings": [],
            "replicas": [],
        }

    def history(self, artifact_id: uuid.UUID) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(deploy_history)
                .where(deploy_history.c.artifact_id == artifact_id)
                .order_by(deploy_history.c.id)
            )
            return [
                {
                    "at": r.at.isoformat(),
                    "actor": r.actor,
                    "event": r.event,
                    "version": r.version,
                    "runtime": r.runtime,
                    "detail": r.detail,
                }
                for r in rows
            ]

    def logs(self, artifact_id: uuid.UUID) -> list[dict]:
        """Every state change of every replica with the runtimes' error messages,
        and what the replicas printed: log lines and call errors (``stream``)."""
        entries = []
        for module in self._modules(artifact_id, include_dead=True):
            version = _version_of(module)
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
            for deployment in self._safe_all():
                try:
                    self.reconcile(deployment)
                except Exception:  # one deployment's trouble never stops the others
                    log.exception("reconciling deployment of %s failed", deployment.artifact_id)

    def _safe_all(self) -> list[Deployment]:
        try:
            return self.all()
        except Exception as exc:
            log.error("cannot read deployments: %s", exc)
            return []

    def reconcile(self, deployment: Deployment) -> None:
        artifact_id, version = deployment.artifact_id, deployment.version
        group = group_of(artifact_id, version)
        detail = self.artifacts.detail(artifact_id)
        name, kind = detail["name"], detail["type"]
        path = self._ensure_file(artifact_id, version, kind)
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
        for _ in range(max(0, wanted - len(new))):
            try:
                created = self._create(name, path, group, deployment, kind)
                new.append(created)
            except P.ProtocolError as exc:
                warnings.append(f"replica not placed: {exc.desc}")
                break
        for extra in sorted(new, key=lambda m: (m.status == P.ALIVE, -m.index))[: max(0, len(new) - wanted)]:
            self._delete(extra.uuid)
            new.remove(extra)
        serving = self._serving_modules()
        healthy = [m for m in new if m.uuid in serving]
        for module in sorted(old, key=lambda m: m.uuid not in serving)[
            : max(0, len(old) + len(healthy) - wanted)
        ]:
            self._delete(module.uuid)
            old.remove(module)
        for module in new:
            if module.restarts >= FAILED_AFTER or module.status in (P.KILLED, P.DEAD):
                errors.append(f"replica {module.uuid}: {module.last_error or P.STATES.get(module.status)}")
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
        if status == "complete" and deployment.last_good_version != version:
            with self.engine.begin() as conn:
                conn.execute(
                    deployments.update()
                    .where(deployments.c.artifact_id == artifact_id)
                    .values(last_good_version=version)
                )
                self._record(
                    conn, artifact_id, "reconciler", "complete", version, None, f"{wanted} replicas serve"
                )
        runtimes = self.control.snapshot(lambda fleet: {u: r.name for u, r in fleet.runtimes.items()})
        with self._lock:
            self._status[artifact_id] = {
                "status": status,
                "version": version,
                "replicas_wanted": _replicas_out(deployment.replicas),
                "labels": deployment.labels,
                "limits": deployment.limits,
                "errors": errors,
                "warnings": warnings,
                "replicas": [
                    {
                        "module": m.uuid,
                        "node": runtimes.get(m.parent or "", None),
                        "version": _version_of(m),
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
                self._record(
                    conn,
                    deployment.artifact_id,
                    "reconciler",
                    "replica serving",
                    _version_of(module),
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

    def _previous_good(self, artifact_id: uuid.UUID, current: int) -> int | None:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(deploy_history.c.version)
                .where(deploy_history.c.artifact_id == artifact_id, deploy_history.c.event == "complete")
                .order_by(deploy_history.c.id.desc())
            ).scalars()
            return next((v for v in rows if v != current), None)

    @staticmethod
    def _record(
        conn: Any,
        artifact_id: uuid.UUID,
        actor: str,
        event: str,
        version: int | None,
        runtime: str | None,
        detail: str | None,
    ) -> None:
        conn.execute(
            deploy_history.insert().values(
                artifact_id=artifact_id,
                at=utc_now(),
                actor=actor,
                event=event,
                version=version,
                runtime=runtime,
                detail=detail,
            )
        )


def _deployment(row: Any) -> Deployment:
    return Deployment(
        row.artifact_id,
        row.version,
        row.replicas,
        row.deployed_by,
        row.last_good_version,
        row.labels or {},
        row.limits or {},
    )


def _limits_of(module: Module) -> dict:
    args = module.args if isinstance(module.args, dict) else {}
    found = args.get("limits")
    return found if isinstance(found, dict) else {}


def _version_of(module: Module) -> int | None:
    tail = (module.group or "").rsplit(":v", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else None


def _replicas_out(replicas: int) -> int | str:
    return "daemon" if replicas == DAEMON else replicas


def _replicas_text(replicas: int) -> str:
    return "one per runtime" if replicas == DAEMON else f"{replicas} replicas"
