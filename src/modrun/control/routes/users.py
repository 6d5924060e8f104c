"""Users: sign-up, who am I, and the admins' user management."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from modrun.control.errors import (
    Forbidden,
    Unprocessable,
)
from modrun.control.routing import Call


async def signup(call: Call) -> Any:
    if not call.plane.signup:
        raise Forbidden("sign-up is disabled here; ask an admin for an account")
    body = await call.json()
    user = await run_in_threadpool(
        call.plane.accounts.create_user, body.get("username"), body.get("email"), body.get("password")
    )
    return JSONResponse({"user_id": str(user.id)}, status_code=201)


async def info(call: Call) -> Any:
    user = call.who.user
    names = {t["id"]: t["name"] for t in call.plane.accounts.teams(set(user.teams))}
    out = user.public() | {
        "teams": [{"id": str(t), "name": names.get(str(t)), "team_admin": a} for t, a in user.teams.items()]
    }
    if call.who.key is not None:
        out["api_key"] = {"id": str(call.who.key.id), "scopes": sorted(call.who.key.scopes)}
    return out


async def list_users(call: Call) -> Any:
    """Admins see every user; anyone else sees themselves and the members of the
    teams they administer (no emails): who else has an account is not theirs to know."""
    user = call.who.user
    everyone = await run_in_threadpool(call.plane.accounts.all)
    if user.admin:
        return {"users": [u.public(with_email=True) for u in everyone]}
    visible = {user.id}
    for team_id, team_admin in user.teams.items():
        if team_admin:
            members = await run_in_threadpool(call.plane.accounts.members, team_id)
            visible.update(uuid.UUID(m["id"]) for m in members)
    return {"users": [u.public(with_email=False) for u in everyone if u.id in visible]}


async def create_user(call: Call) -> Any:
    body = await call.json()
    user = await run_in_threadpool(
        call.plane.accounts.create_user,
        body.get("username"),
        body.get("email"),
        body.get("password"),
        bool(body.get("admin", False)),
    )
    return JSONResponse({"user_id": str(user.id)}, status_code=201)


async def delete_user(call: Call) -> Any:
    user_id = call.uuid_param("id")
    if user_id == call.who.user.id:
        raise Unprocessable("you cannot delete yourself")
    await run_in_threadpool(call.plane.tokens.revoke_user, user_id)
    await run_in_threadpool(call.plane.accounts.delete, user_id)
    return Response(status_code=204)


async def promote(call: Call) -> Any:
    await run_in_threadpool(call.plane.accounts.set_admin, call.uuid_param("id"), True)
    return Response(status_code=204)


async def demote(call: Call) -> Any:
    await run_in_threadpool(call.plane.accounts.set_admin, call.uuid_param("id"), False)
    return Response(status_code=204)
