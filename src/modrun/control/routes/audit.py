"""The audit log, for admins."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from modrun.control.errors import (
    BadRequest,
)
from modrun.control.routing import Call, rfc3339
from modrun.errors import ConfigError
from modrun.http.params import limit_param


async def audit(call: Call) -> Any:
    q = call.request.query_params
    since = rfc3339(q["since"]) if "since" in q else None
    try:
        limit = limit_param(q, 100)
    except ConfigError as exc:
        raise BadRequest(str(exc)) from None
    entries = await run_in_threadpool(
        call.plane.audit.query, q.get("actor"), q.get("action"), q.get("outcome"), since, limit
    )
    return {"entries": entries}
