"""Models over REST.

* ``GET /models``: every manifest model with provider, source model and, for
  process and embedded models, live status (processes alive/idle, restarts).
* ``POST /models/{name}/invoke``: JSON in, the model's JSON out (recorded in
  the inference history like calls from functions).
* ``POST /models/{name}/ping``: the health ping of one model.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from modrun.errors import HostFunctionError
from modrun.manifest.model import EXECUTOR_PROVIDERS
from modrun.secrets.redact import REDACTOR

if TYPE_CHECKING:
    from modrun.services import Node


def _describe(node: Node, name: str) -> dict[str, Any]:
    spec = node.resolved.models[name]
    executor = node.executors.get(name) if node.executors is not None else None
    doc: dict[str, Any] = {"name": name, "provider": spec.provider, "sourceModel": spec.source_model or None}
    if spec.provider in EXECUTOR_PROVIDERS:
        doc.update(
            {
                "command": spec.command,
                "host": spec.host,
                "pool": spec.pool,
                "protocol": spec.protocol,
                "status": executor.ping() if executor is not None else {"healthy": False},
            }
        )
    else:
        doc["connection"] = spec.connection
    return doc


async def list_models(request: Request) -> JSONResponse:
    node: Node = request.app.state.node
    return JSONResponse({"models": [_describe(node, name) for name in sorted(node.resolved.models)]})


async def invoke_model(request: Request) -> JSONResponse:
    node: Node = request.app.state.node
    name = request.path_params["name"]
    if name not in node.resolved.models:
        return JSONResponse({"error": f"no model named {name!r}"}, status_code=404)
    try:
        payload = json.loads(await request.body() or b"null")
    except ValueError as exc:
        return JSONResponse({"error": f"body is not JSON: {exc}"}, status_code=400)
    invoker = node.services.current.models
    try:
        result = await asyncio.to_thread(invoker.invoke, name, payload)
    except HostFunctionError as exc:
        return JSONResponse({"error": REDACTOR.scrub(exc.message), "model": name}, status_code=502)
    return JSONResponse({"result": result})


async def ping_model(request: Request) -> JSONResponse:
    node: Node = request.app.state.node
    name = request.path_params["name"]
    if name not in node.resolved.models:
        return JSONResponse({"error": f"no model named {name!r}"}, status_code=404)
    return JSONResponse(_describe(node, name))
