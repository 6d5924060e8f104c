"""Join tokens, the node credentials they are exchanged for, and the call decisions nodes ask for."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from modrun.control.errors import (
    BadRequest,
    Conflict,
    NotFound,
)
from modrun.control.guard import Subject
from modrun.control.routing import Call, rfc3339
from modrun.db.times import utc_now


async def create_join_token(call: Call) -> Any:
    body = await call.json()
    name = body.get("name", "node")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise BadRequest("name: 1 to 200 characters")
    expires = rfc3339(body["exp"]) if body.get("exp") is not None else None
    if expires is not None and expires <= utc_now():
        raise BadRequest("exp: already past")
    token_id, token = await run_in_threadpool(
        call.plane.join_tokens.create, name.strip(), call.who.actor, expires
    )
    return JSONResponse({"id": str(token_id), "token": token}, status_code=201)


async def list_join_tokens(call: Call) -> Any:
    return {"tokens": await run_in_threadpool(call.plane.join_tokens.list)}


async def delete_join_token(call: Call) -> Any:
    if not await run_in_threadpool(call.plane.join_tokens.delete, call.uuid_param("id")):
        raise NotFound("no such join token")
    return Response(status_code=204)


async def join(call: Call) -> Any:
    """A join token's holder joins as one runtime: ``{runtime, name}`` gets that
    runtime's credential, once; a uuid that joined already is refused (its
    credential is its identity, and nobody else may take it)."""
    body = await call.json()
    name = body.get("name", "node")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise BadRequest("name: 1 to 200 characters")
    try:
        runtime = uuid.UUID(str(body.get("runtime")))
    except ValueError:
        raise BadRequest("runtime: a uuid") from None
    credential = await run_in_threadpool(
        call.plane.node_credentials.issue, runtime, name.strip(), call.who.node
    )
    if credential is None:
        raise Conflict(f"runtime {runtime} has joined already: it signs in with its own credential")
    return JSONResponse({"runtime": str(runtime), "credential": credential}, status_code=201)


async def list_nodes(call: Call) -> Any:
    return {"nodes": await run_in_threadpool(call.plane.node_credentials.list)}


async def revoke_node(call: Call) -> Any:
    """Cut a runtime off: its credential stops working at once, and the
    embedded broker drops its connection."""
    if not await run_in_threadpool(call.plane.node_credentials.revoke, call.uuid_param("runtime")):
        raise NotFound("no such joined runtime (or revoked already)")
    return Response(status_code=204)


async def decide(call: Call) -> Any:
    """A node asks whether a caller may invoke an artifact's functions."""
    body = await call.json()
    artifact = body.get("artifact")
    if not isinstance(artifact, str) or not isinstance(body.get("subject"), dict):
        raise BadRequest("give {subject, artifact}")
    try:
        subject = Subject.from_dict(body["subject"])
    except (KeyError, TypeError, ValueError):
        raise BadRequest("subject: malformed") from None
    decision = await run_in_threadpool(call.plane.decide, subject, artifact, False)
    return decision.as_dict()
