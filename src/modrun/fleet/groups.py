"""Module group names: how the fleet knows which deployment a module serves.

A deployment's replicas are modules of group ``deploy:<artifact>:v<version>``;
the orchestrator, the gateway and the nodes all read the artifact from it.
"""

from __future__ import annotations

import uuid


def group_prefix(artifact_id: uuid.UUID) -> str:
    return f"deploy:{artifact_id}:"


def group_of(artifact_id: uuid.UUID, version: int) -> str:
    return f"{group_prefix(artifact_id)}v{version}"


def artifact_of_group(group: str | None) -> str | None:
    """The artifact id a deployment's module group names, None for other modules."""
    if not group or not group.startswith("deploy:"):
        return None
    return group.split(":")[1]


def version_of_group(group: str | None) -> int | None:
    """The artifact version a deployment's module group names."""
    tail = (group or "").rsplit(":v", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else None
