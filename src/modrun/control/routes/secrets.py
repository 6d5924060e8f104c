"""A deployment's secrets: its owner sets, lists (names only) and deletes them."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from modrun.control.errors import NotFound
from modrun.control.routing import Call


async def list_secrets(call: Call) -> Any:
    names = await run_in_threadpool(call.plane.secrets.names, call.uuid_param("id"))
    return {"secrets": names}


async def set_secret(call: Call) -> Any:
    """``PUT .../secrets/{name}`` with ``{"value"}``; the value is never shown again."""
    body = await call.json()
    name = call.request.path_params["name"]
    created = await run_in_threadpool(
        call.plane.secrets.set, call.uuid_param("id"), name, body.get("value"), call.who.actor
    )
    note = "takes effect when the deployment's modules next start (deploy again to restart them)"
    return JSONResponse({"name": name, "created": created, "note": note}, status_code=201 if created else 200)


async def delete_secret(call: Call) -> Any:
    if not await run_in_threadpool(
        call.plane.secrets.delete, call.uuid_param("id"), call.request.path_params["name"]
    ):
        raise NotFound("no such secret")
    return Response(status_code=204)
