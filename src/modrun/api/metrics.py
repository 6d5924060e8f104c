"""``GET /metrics``: Prometheus text exposition (of every process of the node)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response


async def metrics_endpoint(request: Request) -> Response:
    status = request.app.state.parts.status
    own = generate_latest(status.metrics)
    slot = status.slot
    if slot is None or request.query_params.get("process") == "self":
        return Response(own, media_type=CONTENT_TYPE_LATEST)
    from modrun.metrics.processes import gather_peers, merge_expositions

    peers = await gather_peers(slot)
    return Response(merge_expositions([own.decode(), *peers]), media_type=CONTENT_TYPE_LATEST)
