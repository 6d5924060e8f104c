"""``GET /health``: is the node up, what is loaded, what failed to load."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse

from modrun import __version__

if TYPE_CHECKING:
    from modrun.services import Node


def health_document(node: Node) -> dict:
    catalog = node.manager.catalog
    slot = node.settings.slot
    return {
        "status": "degraded" if node.load_errors() else "ok",
        "version": __version__,
        "environment": node.settings.environment,
        "uptimeSeconds": round(time.time() - node.started_at, 3),
        "storage": node.storage.describe(),
        "plugins": [p.describe() for p in catalog.plugins.values()],
        "functions": len(catalog.by_key),
        "loadErrors": node.load_errors(),
        "conflicts": [c.message for c in catalog.conflicts],
        "warnings": list(node.resolved.missing),
        "generation": catalog.generation,
        # --processes: how many serve this node, and which one answered
        "processes": {"count": slot.count, "answered": slot.index} if slot else {"count": 1, "answered": 0},
    }


async def health_endpoint(request: Request) -> JSONResponse:
    return JSONResponse(health_document(request.app.state.node))
