"""Teams, their members and their admins."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from modrun.control.errors import Forbidden
from modrun.control.routing import Call


async def create_team(call: Call) -> Any:
    body = await call.json()
    return JSONResponse(
        await run_in_threadpool(call.plane.accounts.create_team, body.get("name")), status_code=201
    )


async def list_teams(call: Call) -> Any:
    user = call.who.user
    only = None if user.admin else set(user.teams)
    return {"teams": await run_in_threadpool(call.plane.accounts.teams, only)}


async def delete_team(call: Call) -> Any:
    await run_in_threadpool(call.plane.accounts.delete_team, call.uuid_param("id"))
    return Response(status_code=204)


def _team_admin(call: Call) -> uuid.UUID:
    """The team in the path, when the caller administers it (global or team admin)."""
    team_id = call.uuid_param("id")
    user = call.who.user
    if not (user.admin or user.teams.get(team_id)):
        raise Forbidden("only a global admin or this team's admins may do that")
    return team_id


async def _set_membership(call: Call, member: bool, team_admin: bool = False) -> Response:
    team_id = _team_admin(call)
    await run_in_threadpool(
        call.plane.accounts.set_member, team_id, call.uuid_param("uid"), member, team_admin
    )
    return Response(status_code=204)


async def add_member(call: Call) -> Any:
    """Add a member, or make a team admin a plain member again."""
    return await _set_membership(call, True)


async def remove_member(call: Call) -> Any:
    return await _set_membership(call, False)


async def add_team_admin(call: Call) -> Any:
    return await _set_membership(call, True, team_admin=True)


async def team_users(call: Call) -> Any:
    team_id = call.uuid_param("id")
    user = call.who.user
    if not (user.admin or team_id in user.teams):
        raise Forbidden("only members of this team may list it")
    return {"users": await run_in_threadpool(call.plane.accounts.members, team_id)}
