"""Scoped API keys."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from modrun.control.errors import (
    BadRequest,
    NotFound,
    Unprocessable,
)
from modrun.control.keys import SCOPES, key_hash, new_key
from modrun.control.routing import Call, rfc3339
from modrun.db.times import utc_now


async def create_key(call: Call) -> Any:
    if not call.plane.secured:
        raise Unprocessable("--auth none has no users, so no API keys: every caller is already trusted")
    body = await call.json()
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise BadRequest("name: 1 to 200 characters")
    scopes = body.get("scopes", ["invoke"])
    if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
        raise BadRequest(f"scopes: a non-empty list of {', '.join(SCOPES)}")
    all_artifacts = bool(body.get("all_artifacts", False))
    artifact_ids = body.get("artifact_ids", [])
    if not isinstance(artifact_ids, list) or not all(isinstance(a, str) for a in artifact_ids):
        raise BadRequest("artifact_ids: a list of artifact ids")
    if not all_artifacts and not artifact_ids:
        raise BadRequest("give artifact_ids or all_artifacts: true")
    expires = rfc3339(body.get("exp"))
    limit = utc_now() + timedelta(seconds=call.plane.max_key_lifetime)
    if expires <= utc_now():
        raise BadRequest("exp: already past")
    if expires > limit:
        raise BadRequest(
            f"exp: at most {call.plane.max_key_lifetime / 86400:g} days ahead (the key lifetime policy)"
        )
    secret = new_key()
    key_id = uuid.uuid4()
    record = {
        "id": key_id,
        "name": name.strip(),
        "key_hash": key_hash(secret),
        "prefix": secret[:12],
        "user_id": call.who.user.id,
        "scopes": sorted(set(scopes)),
        "all_artifacts": all_artifacts,
        "artifact_ids": sorted(set(artifact_ids)),
        "created_at": utc_now(),
        "expires_at": expires,
        "last_used_at": None,
    }
    await run_in_threadpool(call.plane.keys.store, record)
    return JSONResponse({"id": str(key_id), "api_key": secret}, status_code=201)


async def list_keys(call: Call) -> Any:
    return {"keys": await run_in_threadpool(call.plane.keys.list, call.who.user.id)}


async def delete_key(call: Call) -> Any:
    body = await call.json()
    try:
        key_id = uuid.UUID(str(body.get("api_key_id")))
    except ValueError:
        raise BadRequest("api_key_id: not an id") from None
    owner = None if call.who.user.admin else call.who.user.id
    if not await run_in_threadpool(call.plane.keys.delete, key_id, owner):
        raise NotFound("no such key of yours")
    return Response(status_code=204)
