"""Declarative deployments: the desired state, owned by the control plane.

``POST /deploy/{artifact}`` records desired state (a version, a replica count
or ``daemon``: one on every modrun runtime) in the ``deployments`` table, and
every change in ``deploy_history`` (what ran where, when, deployed by whom).
Making the fleet match is not done here: the fleet side (the orchestrator's
``Reconciler``) implements ``DeploymentFleet``, and the control plane is handed
one when there is a fleet. A control plane without a fleet refuses deployments.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.control.errors import NotFound, Unprocessable
from modrun.db.tables import deploy_history, deployments
from modrun.db.times import utc_now

DAEMON = -1


@dataclass
class Deployment:
    artifact_id: uuid.UUID
    version: int
    replicas: int
    deployed_by: str
    last_good_version: int | None
    labels: dict[str, str] = field(default_factory=dict)  # node labels every replica's node must have
    limits: dict = field(default_factory=dict)  # per-call limits: timeout (s), max_memory (bytes)


class DeploymentFleet(Protocol):
    """What the control plane asks of the fleet side of deployments."""

    def changed(self) -> None:
        """Desired state changed: reconcile soon."""

    def removed(self, artifact_id: uuid.UUID) -> None:
        """The artifact is no longer deployed: stop its replicas now."""

    def status(self, artifact_id: uuid.UUID) -> dict | None:
        """What runs (None before the first reconcile)."""

    def logs(self, artifact_id: uuid.UUID) -> list[dict]: ...

    def runtime_count(self, labels: dict[str, str]) -> int:
        """Live runtimes that can serve plugins and have the labels."""

    def forget(self, artifact_id: uuid.UUID) -> None:
        """Drop the fleet's copies of a deleted artifact's versions."""


class DeploymentStore:
    """The ``deployments`` and ``deploy_history`` tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
            self.record(conn, artifact_id, actor, event, version, None, _replicas_text(replicas))
        return {
            "artifact_id": str(artifact_id),
            "version": version,
            "replicas": replicas_out(replicas),
            "labels": labels or {},
            "limits": limits or {},
        }

    def rollback(self, artifact_id: uuid.UUID, actor: str) -> dict:
        current = self.get(artifact_id)
        if current is None:
            raise NotFound("not deployed")
        target = self._previous_good(artifact_id, current.version)
        if target is None:
            raise Unprocessable("no earlier version of this deployment was ever complete")
        with self.engine.begin() as conn:
            conn.execute(
                deployments.update()
                .where(deployments.c.artifact_id == artifact_id)
                .values(version=target, deployed_by=actor, updated_at=utc_now())
            )
            self.record(conn, artifact_id, actor, "rollback", target, None, f"from version {current.version}")
        return {
            "artifact_id": str(artifact_id),
            "version": target,
            "replicas": replicas_out(current.replicas),
        }

    def undeploy(self, artifact_id: uuid.UUID, actor: str) -> None:
        with self.engine.begin() as conn:
            if not conn.execute(
                deployments.delete().where(deployments.c.artifact_id == artifact_id)
            ).rowcount:
                raise NotFound("not deployed")
            self.record(conn, artifact_id, actor, "undeploy", None, None, None)

    def get(self, artifact_id: uuid.UUID) -> Deployment | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(deployments).where(deployments.c.artifact_id == artifact_id)).first()
        return _deployment(row) if row else None

    def all(self) -> list[Deployment]:
        with self.engine.connect() as conn:
            return [_deployment(r) for r in conn.execute(sa.select(deployments))]

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

    def _previous_good(self, artifact_id: uuid.UUID, current: int) -> int | None:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(deploy_history.c.version)
                .where(deploy_history.c.artifact_id == artifact_id, deploy_history.c.event == "complete")
                .order_by(deploy_history.c.id.desc())
            ).scalars()
            return next((v for v in rows if v != current), None)

    @staticmethod
    def record(
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


class Deployments:
    """Desired state and the fleet that makes it so: what the control plane's routes use."""

    def __init__(self, store: DeploymentStore, fleet: DeploymentFleet) -> None:
        self.store = store
        self.fleet = fleet

    def deploy(self, artifact_id: uuid.UUID, version: int, replicas: int, actor: str,
               labels: dict[str, str] | None = None, limits: dict | None = None) -> dict:  # fmt: skip
        done = self.store.deploy(artifact_id, version, replicas, actor, labels, limits)
        self.fleet.changed()
        return done

    def rollback(self, artifact_id: uuid.UUID, actor: str) -> dict:
        done = self.store.rollback(artifact_id, actor)
        self.fleet.changed()
        return done

    def undeploy(self, artifact_id: uuid.UUID, actor: str) -> None:
        self.store.undeploy(artifact_id, actor)
        self.fleet.removed(artifact_id)

    def status(self, artifact_id: uuid.UUID) -> dict:
        deployment = self.store.get(artifact_id)
        if deployment is None:
            raise NotFound("not deployed")
        return self.fleet.status(artifact_id) or {
            "status": "not_started",
            "version": deployment.version,
            "replicas_wanted": replicas_out(deployment.replicas),
            "errors": [],
            "warnings": [],
            "replicas": [],
        }

    def all(self) -> list[Deployment]:
        return self.store.all()

    def deployed(self, artifact_id: uuid.UUID) -> bool:
        return self.store.get(artifact_id) is not None

    def history(self, artifact_id: uuid.UUID) -> list[dict]:
        return self.store.history(artifact_id)

    def logs(self, artifact_id: uuid.UUID) -> list[dict]:
        return self.fleet.logs(artifact_id)

    def runtime_count(self, labels: dict[str, str]) -> int:
        return self.fleet.runtime_count(labels)

    def forget(self, artifact_id: uuid.UUID) -> None:
        self.fleet.forget(artifact_id)


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


def replicas_out(replicas: int) -> int | str:
    return "daemon" if replicas == DAEMON else replicas


def _replicas_text(replicas: int) -> str:
    return "one per runtime" if replicas == DAEMON else f"{replicas} replicas"
