"""Models over REST.

* ``GET /models``: every manifest model with provider, source model and, for
  process and embedded models, live status (processes alive/idle, restarts).
* ``POST /models/{name}/invoke``: JSON in, the model's JSON out (recorded in
  the inference history like calls from functions).
* ``POST /models/{name}/ping``: the health ping of one model.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from modrun.db import registry
from modrun.errors import ConfigError, HostFunctionError
from modrun.http.params import limit_param
from modrun.manifest.model import EXECUTOR_PROVIDERS
from modrun.redact import REDACTOR

if TYPE_CHECKING:
    from modrun.api.parts import ModelParts


def _describe(models: ModelParts, name: str) -> dict[str, Any]:
    spec = models.catalog.models[name]
    executor = models.executors.get(name)
    doc: dict[str, Any] = {
        "name": name,
        "provider": spec.provider,
        "sourceModel": spec.source_model or None,
        "source": models.catalog.sources.get(name, "manifest"),
        "weightsVersion": int(spec.env["MODRUN_MODEL_WEIGHTS_VERSION"])
        if "MODRUN_MODEL_WEIGHTS_VERSION" in spec.env
        else None,
    }
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
    models: ModelParts = request.app.state.parts.models
    return JSONResponse({"models": [_describe(models, name) for name in sorted(models.catalog.models)]})


async def invoke_model(request: Request) -> JSONResponse:
    models: ModelParts = request.app.state.parts.models
    name = request.path_params["name"]
    if name not in models.catalog.models:
        return JSONResponse({"error": f"no model named {name!r}"}, status_code=404)
    try:
        payload = json.loads(await request.body() or b"null")
    except ValueError as exc:
        return JSONResponse({"error": f"body is not JSON: {exc}"}, status_code=400)
    invoker = models.invoker()
    try:
        result = await asyncio.to_thread(invoker.invoke, name, payload)
    except HostFunctionError as exc:
        return JSONResponse({"error": REDACTOR.scrub(exc.message), "model": name}, status_code=502)
    return JSONResponse({"result": result})


async def ping_model(request: Request) -> JSONResponse:
    models: ModelParts = request.app.state.parts.models
    name = request.path_params["name"]
    if name not in models.catalog.models:
        return JSONResponse({"error": f"no model named {name!r}"}, status_code=404)
    return JSONResponse(_describe(models, name))


# -- run-time changes (MER: model-create / model-modify / model-delete) ---------


def _refused(models: ModelParts) -> JSONResponse | None:
    if models.allow_changes:
        return None
    return JSONResponse(
        {
            "error": "run-time model changes are disabled: start with --allowRuntimeChanges "
            "(or ALLOW_MODEL_SERVER_RUNTIME_CHANGES=true)"
        },
        status_code=403,
    )


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        doc = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise ConfigError(f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError("body must be a JSON object")
    return doc


async def _change(request: Request, action) -> JSONResponse:
    models: ModelParts = request.app.state.parts.models
    refused = _refused(models)
    if refused is not None:
        return refused
    try:
        status = await action(models)
    except ConfigError as exc:
        return JSONResponse({"error": str(exc)}, status_code=409 if "already exists" in str(exc) else 400)
    await asyncio.to_thread(models.sync)
    return status


async def create_model(request: Request) -> JSONResponse:
    async def action(models: ModelParts) -> JSONResponse:
        doc = await _json_object(request)
        name = str(doc.pop("name", ""))
        if name in models.catalog.models and models.catalog.sources.get(name) == "manifest":
            raise ConfigError(f"{name!r} is a manifest model; change it in the manifest")
        await asyncio.to_thread(registry.create, models.db, name, doc)
        return JSONResponse({"created": name}, status_code=201)

    return await _change(request, action)


async def modify_model(request: Request) -> JSONResponse:
    async def action(models: ModelParts) -> JSONResponse:
        name = request.path_params["name"]
        await asyncio.to_thread(registry.modify, models.db, name, await _json_object(request))
        return JSONResponse({"modified": name})

    return await _change(request, action)


async def delete_model(request: Request) -> JSONResponse:
    async def action(models: ModelParts) -> JSONResponse:
        name = request.path_params["name"]
        await asyncio.to_thread(registry.delete, models.db, name)
        return JSONResponse({"deleted": name})

    return await _change(request, action)


async def model_access(request: Request) -> JSONResponse:
    models: ModelParts = request.app.state.parts.models
    models.access_log.flush(timeout=5)
    try:
        limit = limit_param(request.query_params, 50)
    except ConfigError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    rows = await asyncio.to_thread(registry.access_log, models.db, request.path_params["name"], limit)
    return JSONResponse({"access": rows})


async def list_weights(request: Request) -> JSONResponse:
    models: ModelParts = request.app.state.parts.models
    rows = await asyncio.to_thread(registry.weights_versions, models.db, request.path_params["name"])
    return JSONResponse({"versions": rows})


async def add_weights(request: Request) -> JSONResponse:
    """``{"params": {...}, "weights": "<base64>"}`` becomes the next version; the
    model's processes restart with it (MODRUN_MODEL_WEIGHTS_* variables)."""

    async def action(models: ModelParts) -> JSONResponse:
        name = request.path_params["name"]
        if name not in models.catalog.models:
            raise ConfigError(f"no model named {name!r}")
        doc = await _json_object(request)
        params = doc.get("params") or {}
        if not isinstance(params, dict):
            raise ConfigError("params must be a JSON object")
        try:
            blob = base64.b64decode(doc["weights"], validate=True) if doc.get("weights") else None
        except (ValueError, TypeError):
            raise ConfigError("weights must be base64") from None
        version = await asyncio.to_thread(registry.add_weights, models.db, name, params, blob)
        return JSONResponse({"model": name, "version": version}, status_code=201)

    return await _change(request, action)
