"""The bazaar's permission model, enforced for every artifact action.

Levels: NONE < READ < WRITE < OWNER. A global admin and the artifact's owner
are OWNER. Otherwise: ``private`` gives nothing; a member of the artifact's
team gets the default permission (a team admin gets OWNER) unless it is
private; ``public`` gives everyone the default permission (READ or WRITE);
``protected`` gives nothing outside the team. A new artifact is ``private``.

Actions need: see, download, invoke = READ; push versions, deploy, undeploy,
roll back, move aliases, tag = WRITE; delete, change access, manage keys =
OWNER. An API key additionally needs the action's scope and the artifact in
its list, and never exceeds its creator's level.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import IntEnum

from modrun.control.accounts import User
from modrun.control.keys import KeyGrant


class Level(IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2
    OWNER = 3


ACCESS = ("public", "protected", "private")
DEFAULTS = {"read": Level.READ, "write": Level.WRITE}

# action -> (key scope, level needed)
ACTIONS: dict[str, tuple[str, Level]] = {
    "read": ("read", Level.READ),
    "invoke": ("invoke", Level.READ),
    "write": ("deploy", Level.WRITE),
    "deploy": ("deploy", Level.WRITE),
    "own": ("manage", Level.OWNER),
}


@dataclass(frozen=True)
class ArtifactAccess:
    id: uuid.UUID
    owner_id: uuid.UUID | None
    team_id: uuid.UUID | None
    access: str
    default_permission: str


def level(user: User, artifact: ArtifactAccess) -> Level:
    if user.admin or artifact.owner_id == user.id:
        return Level.OWNER
    if artifact.access == "private":
        return Level.NONE
    default = DEFAULTS.get(artifact.default_permission, Level.READ)
    if artifact.team_id is not None and artifact.team_id in user.teams:
        return Level.OWNER if user.teams[artifact.team_id] else default
    return default if artifact.access == "public" else Level.NONE


def allowed(user: User, key: KeyGrant | None, artifact: ArtifactAccess, action: str) -> bool:
    scope, needed = ACTIONS[action]
    if key is not None and not key.covers(scope, str(artifact.id)):
        return False
    return level(user, artifact) >= needed
