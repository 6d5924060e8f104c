"""The fleet as a whole: ``/api/config`` for joining nodes, the function list, health, events,
call statistics, metrics, the index and the console."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from modrun.api.explorer import explorer_page
from modrun.api.openai_compat import model_entries
from modrun.console import page, wants_html
from modrun.fleet import protocol as P
from modrun.orchestrator.fleet import Fleet
from modrun.orchestrator.routes.common import Visibility, head_of, listing, problem
from modrun.version import __version__

if TYPE_CHECKING:
    from modrun.orchestrator.engine import ControlLoop
    from modrun.orchestrator.head import Head


async def config(request: Request) -> JSONResponse:
    orch = head_of(request)
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
    orch = head_of(request)
    visible = Visibility.of(request)
    found = orch.gateway.functions()
    if not visible.everything:
        found = orch.control.snapshot(lambda fleet: [f for f in found if visible.function(f, fleet)])
    return listing(found, request)


async def openai_models(request: Request) -> JSONResponse:
    """``GET /v1/models``: the chat-handler functions the caller may invoke."""
    orch = head_of(request)
    visible = Visibility.of(request, "invoke")
    found = [f for f in orch.gateway.functions() if f.get("chat")]
    if not visible.everything:
        found = orch.control.snapshot(lambda fleet: [f for f in found if visible.function(f, fleet)])
    return JSONResponse(model_entries(f["name"] for f in found))


async def health(request: Request) -> JSONResponse:
    orch = head_of(request)

    def count(fleet: Fleet) -> dict:
        alive = sum(1 for r in fleet.runtimes.values() if r.alive)
        states = {k: v for k, v in fleet.module_states().items() if v}
        return {"runtimes": {"alive": alive, "dead": len(fleet.runtimes) - alive}, "modules": states}

    return JSONResponse(
        {
            "status": "ok" if orch.mqtt.connected.is_set() else "degraded: no MQTT broker",
            "version": __version__,
            "mqtt": str(orch.settings.broker),
            "embeddedBroker": orch.broker is not None,
            "realm": orch.settings.realm,
            "scheduler": orch.control.policy.name,
            "control": _control_lag(orch.control),
            **leadership(orch),
            **orch.control.snapshot(count),
        }
    )


def leadership(orch: Head) -> dict:
    """Who leads the fleet, since when, and this orchestrator's part in it."""
    campaign = orch.campaign
    if campaign is None:  # alone on its database
        return {"role": "leader", "leader": None}
    role = "leader" if orch.control.leading else "follower" if campaign.candidate else "gateway"
    leader = campaign.leader
    return {
        "role": role,
        "instance": campaign.lease.instance,
        "term": orch.control.term,
        "leader": leader.as_dict() if leader is not None else None,
    }


def _control_lag(control: ControlLoop) -> dict:
    """How far behind the control loop runs (milliseconds, over the latest messages)."""
    p50, p99 = control.lag.quantiles(0.5, 0.99)
    shown = {k: round(v * 1000, 3) if v is not None else None for k, v in (("p50", p50), ("p99", p99))}
    return {"backlog": control.backlog, "lag_ms": shown}


async def console_page(_request: Request) -> Response:
    return page("fleet")


async def fleet_explorer(_request: Request) -> Response:
    """GraphiQL on the gateway's /graphql (a signed-in console session is enough)."""
    return explorer_page("/graphql")


def fleet_summary(fleet: Fleet, visible: Visibility) -> dict:
    """What the console's live views need: every runtime, modules by state
    (of the modules the caller may see)."""
    states = fleet.module_states(visible.module)
    hosted: dict[str, int] = {}
    for m in fleet.modules.values():
        if m.status == P.ALIVE and m.parent and visible.module(m):
            hosted[m.parent] = hosted.get(m.parent, 0) + 1
    runtimes = []
    for r in sorted(fleet.runtimes.values(), key=lambda r: (r.name, r.uuid)):
        entry = {
            "uuid": r.uuid,
            "name": r.name,
            "alive": r.alive,
            "status": r.status,
            "labels": r.labels,
            "load": r.load,
            "modules": hosted.get(r.uuid, 0),
            "functions": sum(1 for f in r.functions if visible.function(f, fleet)),
            "ka_ts": r.ka_ts.isoformat(),
        }
        if visible.everything:
            entry["url"] = r.url
        runtimes.append(entry)
    return {"version": fleet.version, "runtimes": runtimes, "modules": {k: v for k, v in states.items() if v}}


REVISIT = 5.0
"""Seconds between new looks at what an events stream's caller may see (their
rights may change while it is open)."""


async def events(request: Request) -> Response:
    """Server-sent events: ``fleet`` (fleet_summary) whenever the fleet changes,
    ``calls`` (the newest call-statistics point) every 2 s; both of what the
    caller may see."""
    orch = head_of(request)
    principal = getattr(request.state, "principal", None)

    async def stream() -> AsyncIterator[str]:
        last_version, last_calls, looked = -1, 0.0, time.monotonic()
        visible = await asyncio.to_thread(Visibility, principal, orch.control_plane)
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            if time.monotonic() - looked >= REVISIT:
                looked = time.monotonic()
                seen = await asyncio.to_thread(Visibility, principal, orch.control_plane)
                if seen.readable != visible.readable:
                    visible, last_version = seen, -1
            version = orch.control.fleet.version
            if version != last_version:
                last_version = version
                summary = orch.control.snapshot(lambda fleet: fleet_summary(fleet, visible))  # noqa: B023
                yield f"event: fleet\ndata: {json.dumps(summary)}\n\n"
            if time.monotonic() - last_calls >= 2:
                last_calls = time.monotonic()
                point = orch.calls.series(window=10, step=10, only=visible.calls())[-1]
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
        return problem(400, "window and step are whole seconds")
    only = Visibility.of(request).calls()
    return JSONResponse(
        {"window": window, "step": step, "points": head_of(request).calls.series(window, step, only)}
    )


async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(head_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)


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
