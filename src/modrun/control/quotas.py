"""Quotas per user and per team: artifact bytes, deployments, replicas.

An artifact counts against its owner and, when it has one, its team; a push
or a deployment must fit both. Limits come from a ``quotas`` row for the
subject (set by an admin; a null field means no limit there) or else from the
orchestrator's defaults (``--quota*`` flags). Going over answers 403 with
what was asked, what is used and the limit.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.control.errors import BadRequest, Forbidden
from modrun.control.permissions import ArtifactAccess
from modrun.db.tables import artifact_versions, artifacts, deployments, quotas

DAEMON = -1
FIELDS = ("artifact_bytes", "deployments", "replicas")


@dataclass(frozen=True)
class Limits:
    artifact_bytes: int | None = None
    deployments: int | None = None
    replicas: int | None = None

    @classmethod
    def from_body(cls, body: dict) -> Limits:
        values = {}
        for name in FIELDS:
            value = body.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise BadRequest(f"{name}: a whole number >= 0, or null for no limit")
            values[name] = value
        return cls(**values)


class QuotaExceeded(Forbidden):
    pass


def user_subject(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


def team_subject(team_id: uuid.UUID) -> str:
    return f"team:{team_id}"


class Quotas:
    def __init__(self, engine: Engine, default: Limits) -> None:
        self.engine = engine
        self.default = default

    def limits(self, subject: str) -> Limits:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(quotas).where(quotas.c.subject == subject)).first()
        if row is None:
            return self.default
        return Limits(row.artifact_bytes, row.deployments, row.replicas)

    def set(self, subject: str, limits: Limits | None) -> None:
        """Set the subject's limits; None returns it to the defaults."""
        with self.engine.begin() as conn:
            conn.execute(quotas.delete().where(quotas.c.subject == subject))
            if limits is not None:
                conn.execute(quotas.insert().values(subject=subject, **asdict(limits)))

    def usage(self, subject: str, runtimes: int = 0, skip: uuid.UUID | None = None) -> dict:
        """What the subject's artifacts use; a daemon deployment counts ``runtimes``
        replicas; ``skip`` leaves one artifact's deployment out (it is being changed)."""
        kind, _, raw = subject.partition(":")
        column = artifacts.c.owner_id if kind == "user" else artifacts.c.team_id
        owned = sa.select(artifacts.c.id).where(column == uuid.UUID(raw))
        with self.engine.connect() as conn:
            size = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(artifact_versions.c.size), 0)).where(
                    artifact_versions.c.artifact_id.in_(owned)
                )
            ).scalar_one()
            query = sa.select(deployments.c.replicas).where(deployments.c.artifact_id.in_(owned))
            if skip is not None:
                query = query.where(deployments.c.artifact_id != skip)
            replicas = list(conn.execute(query).scalars())
        return {
            "artifact_bytes": int(size),
            "deployments": len(replicas),
            "replicas": sum(runtimes if r == DAEMON else r for r in replicas),
        }

    def report(self, subject: str, runtimes: int = 0) -> dict:
        return {
            "subject": subject,
            "limits": asdict(self.limits(subject)),
            "usage": self.usage(subject, runtimes),
        }

    # -- checks ---------------------------------------------------------------------

    def room_for_bytes(self, subjects: list[str]) -> int | None:
        """How many more artifact bytes fit every subject (None: no limit)."""
        room = None
        for subject in subjects:
            limit = self.limits(subject).artifact_bytes
            if limit is not None:
                left = max(0, limit - self.usage(subject)["artifact_bytes"])
                room = left if room is None else min(room, left)
        return room

    def check_deploy(self, subjects: list[str], artifact_id: uuid.UUID, replicas: int, runtimes: int) -> None:
        """Raises QuotaExceeded unless deploying ``replicas`` of the artifact fits."""
        wanted = runtimes if replicas == DAEMON else replicas
        for subject in subjects:
            limits = self.limits(subject)
            used = self.usage(subject, runtimes, skip=artifact_id)
            if limits.deployments is not None and used["deployments"] + 1 > limits.deployments:
                raise QuotaExceeded(
                    f"deployment quota of {subject} reached: {used['deployments']} of {limits.deployments}"
                )
            if limits.replicas is not None and used["replicas"] + wanted > limits.replicas:
                raise QuotaExceeded(
                    f"replica quota of {subject}: {used['replicas']} used + {wanted} asked "
                    f"> {limits.replicas} allowed"
                )


def quota_subjects(access: ArtifactAccess) -> list[str]:
    """Whose quotas an artifact counts against: its owner's and its team's."""
    subjects = [user_subject(access.owner_id)] if access.owner_id else []
    return subjects + ([team_subject(access.team_id)] if access.team_id else [])
