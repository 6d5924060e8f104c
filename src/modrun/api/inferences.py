"""``GET /inferences``: the inference history, newest first.

Query parameters: ``model``, ``function``, ``plugin``, ``status``, ``since`` and
``until`` (ISO 8601 or Unix seconds), ``limit`` (default 100, at most 1000)
and ``cursor`` (the ``nextCursor`` of the previous page).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse

from modrun.db.queries import InferenceFilter, list_inferences, parse_time
from modrun.errors import ConfigError
from modrun.http.params import limit_param

if TYPE_CHECKING:
    from modrun.api.parts import StatusParts


async def inferences_endpoint(request: Request) -> JSONResponse:
    status: StatusParts = request.app.state.parts.status
    q = request.query_params
    try:
        filters = InferenceFilter(
            model=q.get("model"),
            function=q.get("function"),
            plugin=q.get("plugin"),
            status=q.get("status"),
            since=parse_time(q.get("since")),
            until=parse_time(q.get("until")),
        )
        limit = limit_param(q, 100)
        rows, cursor = await asyncio.to_thread(list_inferences, status.db, filters, limit, q.get("cursor"))
    except ConfigError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"inferences": rows, "nextCursor": cursor})
