"""``GET /health``: is the node up, what is loaded, what failed to load."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse

from modrun.version import __version__

if TYPE_CHECKING:
    from modrun.api.parts import NodeParts


def health_document(parts: NodeParts) -> dict:
    catalog = parts.functions.catalog
    status = parts.status
    slot = status.slot
    load_errors = parts.functions.load_errors()
    return {
        "status": "degraded" if load_errors else "ok",
        "version": __version__,
        "environment": status.environment,
        "uptimeSeconds": round(time.time() - status.started_at, 3),
        "storage": status.describe_storage(),
        "plugins": [p.describe() for p in catalog.plugins.values()],
        "functions": len(catalog.by_key),
        "loadErrors": load_errors,
        "conflicts": [c.message for c in catalog.conflicts],
        "warnings": status.missing_secrets(),
        "generation": catalog.generation,
        # --processes: how many serve this node, and which one answered
        "processes": {"count": slot.count, "answered": slot.index} if slot else {"count": 1, "answered": 0},
    }


async def health_endpoint(request: Request) -> JSONResponse:
    return JSONResponse(health_document(request.app.state.parts))
