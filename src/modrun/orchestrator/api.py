"""The orchestrator's HTTP API.

SilverLine's read API in its shapes (``/api/runtimes/``, ``/api/modules/``,
``/api/queued/``: ``{"count", "start", "results"}``; lookups by full uuid,
then name, then uuid suffix; 404 when none), plus what SilverLine lacks:
creating and deleting modules, filters, the file store, the fleet's function
list, ``GET /api/config`` for joining nodes, and the gateway.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse

from modrun import __version__
from modrun.api.explorer import explorer_page
from modrun.api.rest import PREFIX, BodyTooLarge, read_body, respond
from modrun.console import asset, page, wants_html
from modrun.control.api import Call, Endpoint, route
from modrun.orchestrator import protocol as P
from modrun.orchestrator.files import BadPath, clean_path
from modrun.orchestrator.fleet import Fleet
from modrun.orchestrator.gateway import BadGraphQL, NodeDied, NoReplica, forwarded_headers, root_fields
from modrun.orchestrator.openapi import openapi_endpoint, reference_endpoint
from modrun.orchestrator.state import Module, Runtime
from modrun.orchestrator.upstream import Lost
from modrun.storage.receive import TooLarge

if TYPE_CHECKING:
    from modrun.orchestrator.service import Orchestrator

JSON_TYPE = b"application/json"
MAX_GATEWAY_BODY = 64 * 1024 * 1024
STATUS_FILTERS = {"all", *P.STATES}


def _orch(request: Request) -> Orchestrator:
    return request.app.state.orchestrator


def _error(exc: P.ProtocolError) -> JSONResponse:
    return JSONResponse({"error": exc.desc, "kind": exc.kind, "data": exc.data}, status_code=exc.status)


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _listing(results: list[dict]) -> JSONResponse:
    return JSONResponse({"count": len(results), "start": 0, "results": results})


def _status_filter(request: Request, default: str) -> str | None:
    wanted = request.query_params.get("status", default)
    if wanted not in STATUS_FILTERS:
        raise P.InvalidArgument("status", wanted)
    return None if wanted == "all" else wanted


def lookup(items: list, query: str) -> Any:
    """SilverLine's lookup: full uuid (any state), then name, then uuid suffix (alive ones)."""
    for item in items:
        if item.uuid == query:
            return item
    alive = [i for i in items if i.status == P.ALIVE]
    for item in alive:
        if item.name == query:
            return item
    for item in alive:
        if item.uuid.endswith(query):
            return item
    return None


def _runtime_entry(fleet: Fleet, runtime: Runtime, full: bool) -> dict:
    entry = runtime.detail() if full else runtime.short()
    modules = [m for m in fleet.modules.values() if m.parent == runtime.uuid]
    entry["children"] = [m.short() for m in modules if m.status == P.ALIVE]
    entry["queued"] = [m.short() for m in modules if m.status == P.QUEUED]
    return entry


# -- runtimes and modules ----------------------------------------------------------------


async def list_runtimes(request: Request) -> JSONResponse:
    try:
        status = _status_filter(request, P.ALIVE)
    except P.ProtocolError as exc:
        return _error(exc)

    def collect(fleet: Fleet) -> list[dict]:
        chosen = [r for r in fleet.runtimes.values() if status is None or r.status == status]
        return [_runtime_entry(fleet, r, full=False) for r in sorted(chosen, key=lambda r: (r.name, r.uuid))]

    return _listing(_orch(request).control.snapshot(collect))


async def get_runtime(request: Request) -> JSONResponse:
    query = request.path_params["query"]

    def find(fleet: Fleet) -> dict | None:
        runtime = lookup(list(fleet.runtimes.values()), query)
        return _runtime_entry(fleet, runtime, full=True) if runtime else None

    found = _orch(request).control.snapshot(find)
    return JSONResponse(found) if found else _problem(404, f"no runtime {query!r}")


def _module_filter(request: Request, default: str) -> Callable[[Fleet], list[dict]]:
    status = _status_filter(request, default)
    runtime_ref = request.query_params.get("runtime")

    def collect(fleet: Fleet) -> list[dict]:
        parent = None
        if runtime_ref:
            runtime = lookup(list(fleet.runtimes.values()), runtime_ref)
            if runtime is None:
                return []
            parent = runtime.uuid
        chosen = [
            m
            for m in fleet.modules.values()
            if (status is None or m.status == status) and (parent is None or m.parent == parent)
        ]
        return [m.short() | {"status": m.status} for m in sorted(chosen, key=lambda m: m.index)]

    return collect


def _modules(request: Request, default: str) -> JSONResponse:
    try:
        collect = _module_filter(request, default)
    except P.ProtocolError as exc:
        return _error(exc)
    return _listing(_orch(request).control.snapshot(collect))


async def list_modules(request: Request) -> JSONResponse:
    return _modules(request, P.ALIVE)


async def list_queued(request: Request) -> JSONResponse:
    return _modules(request, P.QUEUED)


async def get_module(request: Request) -> JSONResponse:
    query = request.path_params["query"]

    def find(fleet: Fleet) -> dict | None:
        module = lookup(list(fleet.modules.values()), query)
        return module.detail() if module else None

    found = _orch(request).control.snapshot(find)
    return JSONResponse(found) if found else _problem(404, f"no module {query!r}")


async def module_output(request: Request) -> JSONResponse:
    """The latest lines the module printed (stdout, stderr), oldest first."""
    query = request.path_params["query"]
    orch = _orch(request)
    found = orch.control.snapshot(lambda fleet: lookup(list(fleet.modules.values()), query))
    if found is None:
        return _problem(404, f"no module {query!r}")
    lines = orch.output.of(found.uuid, request.query_params.get("since"))
    return JSONResponse({"module": found.uuid, "lines": lines})


async def create_module(request: Request) -> JSONResponse:
    try:
        data = json.loads(await request.body() or b"null")
    except ValueError:
        return _problem(400, "the body must be a JSON object: the module (SilverLine's create data)")
    orch = _orch(request)
    try:
        module: Module = await asyncio.wrap_future(orch.control.call(orch.control.modules.create, data))
    except P.ProtocolError as exc:
        return _error(exc)
    return JSONResponse(orch.control.snapshot(lambda _f: module.detail()), status_code=201)


async def delete_module(request: Request) -> JSONResponse:
    query = request.path_params["query"]
    orch = _orch(request)

    def delete(fleet: Fleet) -> Module:
        module = lookup(list(fleet.modules.values()), query)
        if module is None:
            raise P.UUIDNotFound(query, "module")
        return orch.control.modules.delete(module.uuid)

    try:
        module = await asyncio.wrap_future(orch.control.call(delete, orch.control.fleet))
    except P.ProtocolError as exc:
        return _error(exc)
    return JSONResponse(orch.control.snapshot(lambda _f: module.detail()))


# -- files ----------------------------------------------------------------------------------


async def list_files(request: Request) -> JSONResponse:
    files = await asyncio.to_thread(_orch(request).files.list, request.query_params.get("prefix", ""))
    return _listing([f.as_dict() for f in files])


def _path(request: Request) -> str:
    return clean_path(request.path_params["path"])


async def put_file(request: Request) -> JSONResponse:
    files = _orch(request).files
    try:
        path = _path(request)
    except BadPath as exc:
        return _problem(400, str(exc))
    receiver = files.receiver()
    try:
        async for chunk in request.stream():
            receiver.write(chunk)
        receiver.finish()
        existed = await asyncio.to_thread(files.info, path)
        info = await asyncio.to_thread(files.commit, path, receiver)
    except TooLarge as exc:
        receiver.abort()
        return _problem(413, str(exc))
    except BaseException:
        receiver.abort()
        raise
    return JSONResponse(info.as_dict(), status_code=200 if existed else 201)


async def get_file(request: Request) -> Response:
    files = _orch(request).files
    try:
        path = _path(request)
    except BadPath as exc:
        return _problem(400, str(exc))
    info = await asyncio.to_thread(files.info, path)
    if info is None:
        return _problem(404, f"no file {path!r}")
    headers = {"etag": f'"{info.sha256}"', "x-checksum-sha256": info.sha256}
    local = files.local_file(info)
    if local is not None:
        return FileResponse(local, headers=headers, media_type="application/octet-stream")
    chunks = await asyncio.to_thread(files.read, info)
    return StreamingResponse(chunks, headers=headers, media_type="application/octet-stream")


async def delete_file(request: Request) -> Response:
    try:
        path = _path(request)
    except BadPath as exc:
        return _problem(400, str(exc))
    if not await asyncio.to_thread(_orch(request).files.delete, path):
        return _problem(404, f"no file {path!r}")
    return Response(status_code=204)


# -- fleet-wide ------------------------------------------------------------------------------


async def config(request: Request) -> JSONResponse:
    orch = _orch(request)
    return JSONResponse(
        {
            "realm": orch.settings.realm,
            "mqtt": orch.advertised_broker(request.url.hostname or "127.0.0.1"),
            "ka_interval_sec": orch.settings.keepalive,
            "keepalive_timeout_sec": orch.settings.ka_timeout,
            "files": "/api/files/",
            "version": __version__,
            "auth": orch.control_plane.node_auth(str(request.base_url)),
        }
    )


async def functions(request: Request) -> JSONResponse:
    return _listing(_orch(request).gateway.functions())


async def health(request: Request) -> JSONResponse:
    orch = _orch(request)

    def count(fleet: Fleet) -> dict:
        states: dict[str, int] = {}
        for m in fleet.modules.values():
            states[P.STATES[m.status]] = states.get(P.STATES[m.status], 0) + 1
        alive = sum(1 for r in fleet.runtimes.values() if r.alive)
        return {"runtimes": {"alive": alive, "dead": len(fleet.runtimes) - alive}, "modules": states}

    return JSONResponse(
        {
            "status": "ok" if orch.mqtt.connected.is_set() else "degraded: no MQTT broker",
            "version": __version__,
            "mqtt": str(orch.settings.broker),
            "embeddedBroker": orch.broker is not None,
            "realm": orch.settings.realm,
            "scheduler": orch.control.policy.name,
            **orch.control.snapshot(count),
        }
    )


async def console_page(_request: Request) -> Response:
    return page("fleet")


async def fleet_explorer(_request: Request) -> Response:
    """GraphiQL on the gateway's /graphql (a signed-in console session is enough)."""
    return explorer_page("/graphql")


def fleet_summary(fleet: Fleet) -> dict:
    """What the console's live views need: every runtime, modules by state."""
    states: dict[str, int] = {}
    hosted: dict[str, int] = {}
    for m in fleet.modules.values():
        states[P.STATES.get(m.status, m.status)] = states.get(P.STATES.get(m.status, m.status), 0) + 1
        if m.status == P.ALIVE and m.parent:
            hosted[m.parent] = hosted.get(m.parent, 0) + 1
    runtimes = [
        {
            "uuid": r.uuid,
            "name": r.name,
            "alive": r.alive,
            "status": r.status,
            "labels": r.labels,
            "load": r.load,
            "modules": hosted.get(r.uuid, 0),
            "functions": len(r.functions),
            "ka_ts": r.ka_ts.isoformat(),
            "url": r.url,
        }
        for r in sorted(fleet.runtimes.values(), key=lambda r: (r.name, r.uuid))
    ]
    return {"version": fleet.version, "runtimes": runtimes, "modules": states}


async def events(request: Request) -> Response:
    """Server-sent events: ``fleet`` (fleet_summary) whenever the fleet changes,
    ``calls`` (the newest call-statistics point) every 2 s."""
    orch = _orch(request)

    async def stream() -> AsyncIterator[str]:
        last_version, last_calls = -1, 0.0
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            version = orch.control.fleet.version
            if version != last_version:
                last_version = version
                summary = orch.control.snapshot(fleet_summary)
                yield f"event: fleet\ndata: {json.dumps(summary)}\n\n"
            if time.monotonic() - last_calls >= 2:
                last_calls = time.monotonic()
                point = orch.calls.series(window=10, step=10)[-1]
                yield f"event: calls\ndata: {json.dumps(point)}\n\n"
            await asyncio.sleep(0.25)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


async def call_stats(request: Request) -> JSONResponse:
    try:
        window = min(900, max(10, int(request.query_params.get("window", "900"))))
        step = min(300, max(1, int(request.query_params.get("step", "10"))))
    except ValueError:
        return _problem(400, "window and step are whole seconds")
    return JSONResponse({"window": window, "step": step, "points": _orch(request).calls.series(window, step)})


async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(_orch(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def index(request: Request) -> Response:
    if wants_html(request):  # a browser: the console's overview
        return page("fleet")
    return JSONResponse(
        {
            "name": "modrun orchestrator",
            "version": __version__,
            "endpoints": {
                "runtimes": "/api/runtimes/",
                "modules": "/api/modules/",
                "queued": "/api/queued/",
                "files": "/api/files/",
                "functions": "/api/functions",
                "config": "/api/config",
                "gateway": "/functions/{name}",
                "graphql": "/graphql",
                "health": "/health",
                "metrics": "/metrics",
                "control": "/api/v2",
                "console": "/console",
                "jwks": "/.well-known/jwks.json",
            },
        }
    )


def plain(handler: Callable[[Request], Any]) -> Callable[[Call], Any]:
    async def handle(call: Call) -> Any:
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
        _one("GET", "/api/config", config, "node", "fleet.config"),
        _one("GET", "/api/functions", functions, "user", "fleet.functions"),
        _one("GET", "/api/events", events, "user", "fleet.events"),
        _one("GET", "/api/stats/calls", call_stats, "user", "fleet.call_stats"),
        *_both("GET", "/api/runtimes/", list_runtimes, "user", "fleet.runtimes"),
        *_both("GET", "/api/runtimes/{query}/", get_runtime, "user", "fleet.runtime"),
        *_both("GET", "/api/modules/", list_modules, "user", "fleet.modules"),
        *_both("POST", "/api/modules/", create_module, "admin", "fleet.module_create"),
        *_both("GET", "/api/modules/{query}/", get_module, "user", "fleet.module"),
        *_both("DELETE", "/api/modules/{query}/", delete_module, "admin", "fleet.module_delete"),
        *_both("GET", "/api/modules/{query}/output/", module_output, "user", "fleet.module_output"),
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


def build_router(orchestrator: Orchestrator, lifespan: Any) -> Starlette:
    plane = orchestrator.control_plane
    routes = [route(plane, e) for e in fleet_endpoints()] + plane.routes()
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: _json_error, 405: _json_error})
    app.router.redirect_slashes = False
    app.state.orchestrator = orchestrator
    return app


class OrchestratorApp:
    """ASGI entry point: gateway calls (``POST /functions/*``, ``POST /graphql``)
    on a fast path, everything else through the router."""

    def __init__(self, orchestrator: Orchestrator, lifespan: Any = None) -> None:
        self.orchestrator = orchestrator
        self.router = build_router(orchestrator, lifespan)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path.startswith(PREFIX):
                await self.timed(scope, receive, send, path[len(PREFIX) :])
                return
            if path == "/graphql":
                await self.timed(scope, receive, send, None)
                return
        await self.router(scope, receive, send)

    async def timed(self, scope: dict, receive: Any, send: Any, key: str | None) -> None:
        """A gateway call, counted in the fleet's call statistics (status, duration)."""
        started = time.perf_counter()
        status = 0

        async def tracked(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.gateway(scope, receive, tracked, key)
        finally:
            self.orchestrator.calls.record(status, time.perf_counter() - started)

    async def gateway(self, scope: dict, receive: Any, send: Any, key: str | None) -> None:
        """A function call (``key``) or a GraphQL request (``None``) sent on to a node."""
        metrics = self.orchestrator.metrics
        gateway = self.orchestrator.gateway
        try:
            body = await read_body(receive, MAX_GATEWAY_BODY)
        except BodyTooLarge:
            await respond(send, 413, b'{"error": "request body too large"}', JSON_TYPE)
            return
        headers = forwarded_headers(scope["headers"])
        guard = self.orchestrator.guard
        try:
            if key is None:
                fields = root_fields(body)
                if guard is not None and not await self.allowed(scope, send, fields, graphql=True):
                    return
                replica, answer = await gateway.graphql(fields, body, headers)
            else:
                if guard is not None and not await self.allowed(scope, send, [key], graphql=False):
                    return
                replica, answer = await gateway.forward(key, body, headers)
        except BadGraphQL as exc:
            await respond(send, 400, _graphql_error(str(exc)), JSON_TYPE)
            return
        except (Lost, NodeDied) as exc:
            # the node went away during the call: it may have run, so it is not retried
            metrics.gateway_calls.labels("502").inc()
            message = {"error": f"node lost during the call: {exc}", "function": key or "graphql"}
            await respond(send, 502, json.dumps(message).encode(), JSON_TYPE)
            return
        except NoReplica as exc:
            metrics.gateway_calls.labels("unavailable").inc()
            if key is None:
                await respond(send, 503, _graphql_error(f"no live node serves all of: {exc}"), JSON_TYPE)
            else:
                message = {"error": f"no live node serves function {key!r}", "function": key}
                status = 503 if gateway.known(key) else 404
                await respond(send, status, json.dumps(message).encode(), JSON_TYPE)
            return
        metrics.gateway_calls.labels(str(answer.status)).inc()
        extra = [(b"x-modrun-node", replica.name.encode())]
        content_type = answer.headers.get(b"content-type", b"application/octet-stream")
        await respond(send, answer.status, answer.body, content_type, extra)

    async def allowed(self, scope: dict, send: Any, keys: Iterable[str], graphql: bool) -> bool:
        """Answer 401/403 and return False unless the caller may invoke what ``keys`` run."""
        orch = self.orchestrator
        assert orch.guard is not None
        decision = await orch.guard.check(scope["headers"], orch.gateway.artifacts(keys))
        if decision.allowed:
            return True
        orch.metrics.gateway_calls.labels(str(decision.status)).inc()
        client = scope.get("client")
        await asyncio.to_thread(
            orch.control_plane.audit.record,
            decision.actor or "anonymous",
            "function.invoke",
            ",".join(sorted(keys)) or "graphql",
            decision.status,
            client[0] if client else "?",
        )
        body = _graphql_error(decision.reason) if graphql else json.dumps({"error": decision.reason}).encode()
        extra = [(b"www-authenticate", b'Bearer realm="modrun"')] if decision.status == 401 else []
        await respond(send, decision.status, body, JSON_TYPE, extra)
        return False


def _graphql_error(message: str) -> bytes:
    return json.dumps({"errors": [{"message": message}]}).encode()
