"""What every fleet route shares: the running orchestrator's parts and SilverLine's answer shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from modrun.fleet import protocol as P

if TYPE_CHECKING:
    from modrun.orchestrator.head import Head


STATUS_FILTERS = {"all", *P.STATES}


def head_of(request: Request) -> Head:
    return request.app.state.orchestrator


def protocol_error(exc: P.ProtocolError) -> JSONResponse:
    return JSONResponse({"error": exc.desc, "kind": exc.kind, "data": exc.data}, status_code=exc.status)


def problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def listing(results: list[dict]) -> JSONResponse:
    return JSONResponse({"count": len(results), "start": 0, "results": results})


def status_filter(request: Request, default: str) -> str | None:
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
