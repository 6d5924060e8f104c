"""SilverLine's read API in its shapes (``/api/runtimes/``, ``/api/modules/``, ``/api/queued/``:
``{"count", "start", "results"}``; lookups by full uuid, then name, then uuid suffix; 404 when
none), plus what SilverLine lacks: creating and deleting modules, filters, module output."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse

from modrun.fleet import protocol as P
from modrun.fleet.groups import artifact_of_group
from modrun.orchestrator.fleet import Fleet
from modrun.orchestrator.routes.common import (
    Visibility,
    fleet_page,
    head_of,
    lookup,
    problem,
    protocol_error,
    status_filter,
)
from modrun.orchestrator.state import Module, Runtime


async def list_runtimes(request: Request) -> JSONResponse:
    try:
        status = status_filter(request, P.ALIVE)
    except P.ProtocolError as exc:
        return protocol_error(exc)

    visible = Visibility.of(request)

    def select(fleet: Fleet) -> list[tuple[Runtime, dict[str, list[Module]]]]:
        chosen = [r for r in fleet.runtimes.values() if status is None or r.status == status]
        placed = visible.placed(fleet)  # once for the page, not once a runtime
        return [(r, placed) for r in sorted(chosen, key=lambda r: (r.name, r.uuid))]

    def render(fleet: Fleet, item: tuple[Runtime, dict[str, list[Module]]]) -> dict:
        return visible.runtime(fleet, item[0], item[1], full=False)

    return fleet_page(request, select, render)


async def get_runtime(request: Request) -> JSONResponse:
    query = request.path_params["query"]
    visible = Visibility.of(request)

    def find(fleet: Fleet) -> dict | None:
        runtime = lookup(list(fleet.runtimes.values()), query)
        return visible.runtime(fleet, runtime, visible.placed(fleet), full=True) if runtime else None

    found = head_of(request).control.snapshot(find)
    return JSONResponse(found) if found else problem(404, f"no runtime {query!r}")


def _module_filter(request: Request, default: str) -> Callable[[Fleet], list[Module]]:
    status = status_filter(request, default)
    runtime_ref = request.query_params.get("runtime")
    visible = Visibility.of(request)

    def select(fleet: Fleet) -> list[Module]:
        parent = None
        if runtime_ref:
            runtime = lookup(list(fleet.runtimes.values()), runtime_ref)
            if runtime is None:
                return []
            parent = runtime.uuid
        chosen = [
            m
            for m in fleet.modules.values()
            if (status is None or m.status == status)
            and (parent is None or m.parent == parent)
            and visible.module(m)
        ]
        return sorted(chosen, key=lambda m: m.index)

    return select


def _modules(request: Request, default: str) -> JSONResponse:
    try:
        select = _module_filter(request, default)
    except P.ProtocolError as exc:
        return protocol_error(exc)
    return fleet_page(request, select, lambda _fleet, m: m.short() | {"status": m.status})


async def list_modules(request: Request) -> JSONResponse:
    return _modules(request, P.ALIVE)


async def list_queued(request: Request) -> JSONResponse:
    return _modules(request, P.QUEUED)


async def get_module(request: Request) -> JSONResponse:
    query = request.path_params["query"]
    visible = Visibility.of(request)

    def find(fleet: Fleet) -> dict | None:
        module = lookup([m for m in fleet.modules.values() if visible.module(m)], query)
        return visible.detail(module) if module else None

    found = head_of(request).control.snapshot(find)
    return JSONResponse(found) if found else problem(404, f"no module {query!r}")


async def module_output(request: Request) -> JSONResponse:
    """The latest lines the module printed (stdout, stderr), oldest first."""
    query = request.path_params["query"]
    orch = head_of(request)
    visible = Visibility.of(request)
    found = orch.control.snapshot(
        lambda fleet: lookup([m for m in fleet.modules.values() if visible.module(m)], query)
    )
    if found is None:
        return problem(404, f"no module {query!r}")
    lines = orch.output.of(found.uuid, request.query_params.get("since"))
    return JSONResponse({"module": found.uuid, "lines": lines})


async def create_module(request: Request) -> JSONResponse:
    try:
        data = json.loads(await request.body() or b"null")
    except ValueError:
        return problem(400, "the body must be a JSON object: the module (SilverLine's create data)")
    orch = head_of(request)
    try:
        module: Module = await asyncio.wrap_future(orch.control.call(orch.control.modules.create, data))
    except P.ProtocolError as exc:
        return protocol_error(exc)
    return JSONResponse(orch.control.snapshot(lambda _f: module.detail()), status_code=201)


async def delete_module(request: Request) -> JSONResponse:
    query = request.path_params["query"]
    orch = head_of(request)

    def delete(fleet: Fleet) -> Module:
        module = lookup(list(fleet.modules.values()), query)
        if module is None:
            raise P.UUIDNotFound(query, "module")
        return orch.control.modules.delete(module.uuid)

    try:
        module = await asyncio.wrap_future(orch.control.call(delete, orch.control.fleet))
    except P.ProtocolError as exc:
        return protocol_error(exc)
    return JSONResponse(orch.control.snapshot(lambda _f: module.detail()))


async def module_secrets(request: Request) -> JSONResponse:
    """The secrets of the deployment a module belongs to, for the node it is
    placed on (its credential) and nobody else: not its owner, not an admin."""
    orch = head_of(request)
    principal = getattr(request.state, "principal", None)
    if orch.control_plane.secured and (principal is None or principal.runtime is None):
        return problem(403, "only the node a module is placed on reads its secrets")
    query = request.path_params["query"]
    module = orch.control.snapshot(lambda fleet: fleet.modules.get(query))
    runtime = str(principal.runtime) if principal is not None and principal.runtime is not None else None
    if module is None or (runtime is not None and module.parent != runtime):
        return problem(404, f"no module {query!r} on this runtime")
    artifact = artifact_of_group(module.group)
    try:
        artifact_id = uuid.UUID(artifact) if artifact else None
    except ValueError:
        artifact_id = None
    values = await asyncio.to_thread(orch.control_plane.secrets.values, artifact_id) if artifact_id else {}
    if values:  # who read which deployment's secrets is kept, never the values
        actor = principal.actor if principal is not None else "anonymous"
        client = request.client.host if request.client else "?"
        target = f"{artifact_id}/{module.uuid}"
        await asyncio.to_thread(orch.control_plane.audit.record, actor, "secret.read", target, 200, client)
    return JSONResponse({"module": module.uuid, "secrets": values}, headers={"cache-control": "no-store"})
