"""The fleet's routes in one table, with their access rules (declared like the control
plane's: an open fleet, ``--auth none``, lets everything through), and the router built
from it and the control plane's table; ``/openapi.json`` documents the same tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from modrun.console import asset
from modrun.control.routes.table import endpoints
from modrun.control.routes.table import routes as control_routes
from modrun.control.routing import Call, Endpoint, route
from modrun.orchestrator.openapi import openapi_endpoint, reference_endpoint
from modrun.orchestrator.routes.files import delete_file, get_file, list_files, put_file
from modrun.orchestrator.routes.fleet import (
    create_module,
    delete_module,
    get_module,
    get_runtime,
    list_modules,
    list_queued,
    list_runtimes,
    module_output,
    module_secrets,
)
from modrun.orchestrator.routes.status import (
    call_stats,
    config,
    console_page,
    events,
    fleet_explorer,
    functions,
    health,
    index,
    metrics,
    openai_models,
)

if TYPE_CHECKING:
    from modrun.orchestrator.head import Head


def plain(handler: Callable[[Request], Any]) -> Callable[[Call], Any]:
    async def handle(call: Call) -> Any:
        call.request.state.principal = call.principal  # whose view the fleet routes filter by
        return await handler(call.request)

    return handle


def _one(method: str, path: str, handler: Callable[[Request], Any], rule: str, action: str) -> Endpoint:
    return Endpoint(method, path, plain(handler), rule, action, prefix="")


def _both(
    method: str, path: str, handler: Callable[[Request], Any], rule: str, action: str
) -> list[Endpoint]:
    """SilverLine's paths end in '/'; accept them without it too."""
    return [_one(method, p, handler, rule, action) for p in (path, path.rstrip("/"))]


def fleet_endpoints() -> list[Endpoint]:
    """The fleet's routes with their access rules (the same table as the control
    plane's: an open fleet, ``--auth none``, lets everything through)."""
    return [
        _one("GET", "/", index, "public", "fleet.index"),
        _one("GET", "/console", console_page, "public", "console.page"),
        _one("GET", "/console/assets/{name}", asset, "public", "console.asset"),
        _one("GET", "/console/graphql", fleet_explorer, "public", "console.explorer"),
        _one("GET", "/console/{path:path}", console_page, "public", "console.page"),
        _one("GET", "/health", health, "public", "fleet.health"),
        _one("GET", "/metrics", metrics, "public", "fleet.metrics"),
        _one("GET", "/openapi.json", openapi_endpoint, "public", "fleet.openapi"),
        _one("GET", "/docs", reference_endpoint, "public", "fleet.reference"),
        _one("GET", "/api/config", config, "joining", "fleet.config"),
        _one("GET", "/api/functions", functions, "user", "fleet.functions"),
        _one("GET", "/v1/models", openai_models, "user", "fleet.openai_models"),
        _one("GET", "/api/events", events, "user", "fleet.events"),
        _one("GET", "/api/stats/calls", call_stats, "user", "fleet.call_stats"),
        *_both("GET", "/api/runtimes/", list_runtimes, "user", "fleet.runtimes"),
        *_both("GET", "/api/runtimes/{query}/", get_runtime, "user", "fleet.runtime"),
        *_both("GET", "/api/modules/", list_modules, "user", "fleet.modules"),
        *_both("POST", "/api/modules/", create_module, "admin", "fleet.module_create"),
        *_both("GET", "/api/modules/{query}/", get_module, "user", "fleet.module"),
        *_both("DELETE", "/api/modules/{query}/", delete_module, "admin", "fleet.module_delete"),
        *_both("GET", "/api/modules/{query}/output/", module_output, "user", "fleet.module_output"),
        _one("GET", "/api/modules/{query}/secrets", module_secrets, "node", "fleet.module_secrets"),
        *_both("GET", "/api/queued/", list_queued, "user", "fleet.queued"),
        *_both("GET", "/api/files/", list_files, "node", "fleet.files"),
        _one("GET", "/api/files/{path:path}", get_file, "node", "fleet.file_get"),
        _one("PUT", "/api/files/{path:path}", put_file, "admin", "fleet.file_put"),
        _one("DELETE", "/api/files/{path:path}", delete_file, "admin", "fleet.file_delete"),
    ]


async def _json_error(_request: Request, exc: Exception) -> JSONResponse:
    """Unknown paths and methods answer JSON like every other refusal."""
    status = getattr(exc, "status_code", 404)
    return JSONResponse({"error": getattr(exc, "detail", "not found")}, status, getattr(exc, "headers", None))


def build_router(orchestrator: Head, lifespan: Any) -> Starlette:
    plane = orchestrator.control_plane
    fleet = fleet_endpoints()
    routes = [route(plane, e) for e in fleet] + control_routes(plane)
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: _json_error, 405: _json_error})
    app.router.redirect_slashes = False
    app.state.orchestrator = orchestrator
    app.state.endpoints = [*fleet, *endpoints()]  # what /openapi.json documents
    app.state.openapi = None  # built on first use: the tables do not change while running
    return app
