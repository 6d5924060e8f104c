"""Artifacts: chunked uploads, versions, download, aliases, tags and access."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from modrun.control.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    TooLarge,
    Unauthorized,
    Unprocessable,
)
from modrun.control.permissions import allowed
from modrun.control.quotas import QuotaExceeded, quota_subjects, user_subject
from modrun.control.routing import Call
from modrun.http.download import blob_response

MAX_CHUNK = 64 * 1024 * 1024


def _artifact_id(call: Call) -> uuid.UUID:
    return call.uuid_param("id")


async def begin_upload(call: Call) -> Any:
    body = await call.json()
    who = call.who
    name, type_ = body.get("name"), body.get("type", "plugin")
    existing = await run_in_threadpool(call.plane.artifacts.by_name, name) if isinstance(name, str) else None
    if existing is not None:
        if not allowed(who.user, who.key, existing, "write"):
            raise Forbidden(f"pushing a version of {name!r} needs Write on it")
    elif who.key is not None and not (who.key.all_artifacts and "deploy" in who.key.scopes):
        raise Forbidden("creating an artifact with an API key needs the deploy scope on all artifacts")
    subjects = quota_subjects(existing) if existing else [user_subject(who.user.id)]
    room = await run_in_threadpool(call.plane.quotas.room_for_bytes, subjects)
    if room == 0:
        raise QuotaExceeded("artifact storage quota used up: delete versions or ask an admin for more")
    granted = await run_in_threadpool(call.plane.tenant_grant, who.user)  # None: an operator's
    token = await run_in_threadpool(
        call.plane.artifacts.begin,
        who.user.id if call.plane.secured else None,
        who.actor,
        name,
        type_,
        existing.id if existing else None,
        room,
        granted,
    )
    return JSONResponse({"token": token}, status_code=201)


def _upload_token(call: Call) -> str:
    scheme, _, token = call.request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.startswith("mru_"):
        raise Unauthorized("send the upload token from POST /artifact/upload as Authorization: Bearer")
    return token.strip()


async def upload_chunk(call: Call) -> Any:
    token = _upload_token(call)
    call.plane.artifacts.upload(token)  # unknown token: 401 before reading the body
    index = call.request.path_params["chunk"]
    data = bytearray()
    async for part in call.request.stream():
        data += part
        if len(data) > MAX_CHUNK:
            call.plane.artifacts.abort(token)
            raise TooLarge(f"a chunk may hold at most {MAX_CHUNK} bytes; the upload is cancelled")
    upload = await run_in_threadpool(call.plane.artifacts.add_chunk, token, index, bytes(data))
    return {"chunk": index, "size": upload.receiver.size}


async def commit_upload(call: Call) -> Any:
    token = _upload_token(call)
    body = await call.json()
    result = await run_in_threadpool(call.plane.artifacts.commit, token, body.get("sha256"))
    return JSONResponse(result, status_code=201)


async def list_artifacts(call: Call) -> Any:
    who = call.who
    rows = await run_in_threadpool(call.plane.artifacts.all)
    return {"artifacts": [summary for access, summary in rows if allowed(who.user, who.key, access, "read")]}


async def artifact_detail(call: Call) -> Any:
    return await run_in_threadpool(call.plane.artifacts.detail, _artifact_id(call))


async def download(call: Call) -> Any:
    artifact_id = _artifact_id(call)
    version, sha256 = await run_in_threadpool(
        call.plane.artifacts.resolve, artifact_id, call.request.query_params.get("version")
    )
    store = call.plane.artifacts
    headers = {"x-checksum-sha256": sha256, "x-artifact-version": str(version), "etag": f'"{sha256}"'}
    return await blob_response(
        headers, lambda: store.local_file(artifact_id, version), lambda: store.read(artifact_id, version)
    )


async def delete_artifact(call: Call) -> Any:
    artifact_id = _artifact_id(call)
    deployer = call.plane.deployments
    if deployer is not None and await run_in_threadpool(deployer.deployed, artifact_id):
        raise Unprocessable("the artifact is deployed: undeploy it first (DELETE /deploy/{id})")
    await run_in_threadpool(call.plane.artifacts.delete, artifact_id)
    if deployer is not None:
        await run_in_threadpool(deployer.forget, artifact_id)
    return Response(status_code=204)


async def set_alias(call: Call) -> Any:
    body = await call.json()
    version = body.get("version")
    if not isinstance(version, int):
        raise BadRequest("version: a version number")
    await run_in_threadpool(call.plane.artifacts.set_alias, _artifact_id(call), body.get("alias"), version)
    return Response(status_code=204)


async def add_tags(call: Call) -> Any:
    body = await call.json()
    version = body.get("version")
    if not isinstance(version, int):
        raise BadRequest("version: a version number")
    tags = await run_in_threadpool(
        call.plane.artifacts.add_tags, _artifact_id(call), version, body.get("tags")
    )
    return {"version": version, "tags": tags}


async def set_access(call: Call) -> Any:
    body = await call.json()
    team = body.get("team_id")
    try:
        team_id = uuid.UUID(team) if team else None
    except (ValueError, TypeError):
        raise BadRequest("team_id: not an id") from None
    if team_id is not None and not await run_in_threadpool(call.plane.accounts.team_exists, team_id):
        raise NotFound("no such team")
    await run_in_threadpool(call.plane.artifacts.set_access, _artifact_id(call), body.get("access"), team_id)
    return Response(status_code=204)


async def set_default_permission(call: Call) -> Any:
    body = await call.json()
    await run_in_threadpool(
        call.plane.artifacts.set_default_permission, _artifact_id(call), body.get("permission")
    )
    return Response(status_code=204)


async def artifact_permissions(call: Call) -> Any:
    from modrun.control.permissions import level

    access = await run_in_threadpool(call.plane.artifacts.access, _artifact_id(call))
    assert access is not None
    return {
        "access": access.access,
        "team_id": str(access.team_id) if access.team_id else None,
        "default_permission": access.default_permission,
        "owner_id": str(access.owner_id) if access.owner_id else None,
        "yours": level(call.who.user, access).name.lower(),
    }


async def team_artifacts(call: Call) -> Any:
    team_id = call.uuid_param("id")
    user = call.who.user
    if not (user.admin or team_id in user.teams):
        raise Forbidden("only members of this team may list it")
    rows = await run_in_threadpool(call.plane.artifacts.all, team_id)
    return {"artifacts": [summary for access, summary in rows if allowed(user, call.who.key, access, "read")]}
