"""Deployments: desired state per artifact, its status, logs, history and rollback."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from modrun.config.units import parse_duration, parse_size
from modrun.control.artifact_checks import bundle_manifests
from modrun.control.deployments import Deployments
from modrun.control.errors import (
    BadRequest,
    Unavailable,
)
from modrun.control.permissions import ArtifactAccess, allowed
from modrun.control.quotas import quota_subjects
from modrun.control.routing import Call
from modrun.control.tenant_policy import refuse_operator_features
from modrun.errors import ConfigError
from modrun.fleet import labels as label_rules

if TYPE_CHECKING:
    from modrun.control.plane import ControlPlane


def deployments_of(call: Call) -> Deployments:
    deployments = call.plane.deployments
    if deployments is None:
        raise Unavailable("deployments need the fleet (this control plane runs without one)")
    return deployments


async def deploy(call: Call) -> Any:
    body = await call.json()
    artifact_id = call.uuid_param("id")
    wanted = body.get("version", body.get("alias"))
    if wanted is not None and not isinstance(wanted, int | str):
        raise BadRequest("version: a number, or alias: a name")
    version, _ = await run_in_threadpool(
        call.plane.artifacts.resolve, artifact_id, str(wanted) if wanted is not None else None
    )
    replicas = body.get("replicas", 1)
    if replicas == "daemon":
        replicas = -1
    elif not isinstance(replicas, int) or isinstance(replicas, bool) or not 0 <= replicas <= 1000:
        raise BadRequest('replicas: 0 to 1000, or "daemon" (one on every runtime)')
    try:
        labels = label_rules.checked(body.get("labels") or {})
    except label_rules.BadLabel as exc:
        raise BadRequest(str(exc)) from None
    limits = _call_limits(body.get("limits") or {})
    deployments = deployments_of(call)
    plane = call.plane
    access = await run_in_threadpool(plane.artifacts.access, artifact_id)
    assert access is not None  # checked by the route's artifact rule
    if plane.secured:
        await run_in_threadpool(check_deployable, plane, access, version)
    runtimes = await run_in_threadpool(deployments.runtime_count, labels)
    await run_in_threadpool(
        call.plane.quotas.check_deploy, quota_subjects(access), artifact_id, replicas, runtimes
    )
    result = await run_in_threadpool(
        deployments.deploy, artifact_id, version, replicas, call.who.actor, labels, limits
    )
    return JSONResponse(result, status_code=202)


def _call_limits(given: Any) -> dict:
    """``{"timeout": "5s" | seconds, "max_memory": "64MiB" | bytes}`` -> seconds and bytes."""
    if not isinstance(given, dict) or set(given) - {"timeout", "max_memory"}:
        raise BadRequest('limits: {"timeout": "5s", "max_memory": "64MiB"} (either may be left out)')
    out: dict = {}
    try:
        if "timeout" in given:
            out["timeout"] = parse_duration(given["timeout"])
        if "max_memory" in given:
            out["max_memory"] = parse_size(given["max_memory"])
    except (ValueError, TypeError, ConfigError) as exc:
        raise BadRequest(f"limits: {exc}") from None
    if out.get("timeout", 1) <= 0 or out.get("max_memory", 1) <= 0:
        raise BadRequest("limits: timeout and max_memory must be above zero")
    return out


async def deploy_status(call: Call) -> Any:
    return await run_in_threadpool(deployments_of(call).status, call.uuid_param("id"))


async def deploy_logs(call: Call) -> Any:
    return {"logs": await run_in_threadpool(deployments_of(call).logs, call.uuid_param("id"))}


async def deploy_history(call: Call) -> Any:
    return {"history": await run_in_threadpool(deployments_of(call).history, call.uuid_param("id"))}


async def undeploy(call: Call) -> Any:
    await run_in_threadpool(deployments_of(call).undeploy, call.uuid_param("id"), call.who.actor)
    return Response(status_code=204)


async def rollback(call: Call) -> Any:
    return await run_in_threadpool(deployments_of(call).rollback, call.uuid_param("id"), call.who.actor)


async def list_deployments(call: Call) -> Any:
    who = call.who
    found = []
    for deployment in await run_in_threadpool(deployments_of(call).all):
        access = await run_in_threadpool(call.plane.artifacts.access, deployment.artifact_id)
        if access is not None and allowed(who.user, who.key, access, "read"):
            status = await run_in_threadpool(deployments_of(call).status, deployment.artifact_id)
            found.append(
                {"artifact_id": str(deployment.artifact_id), "deployed_by": deployment.deployed_by} | status
            )
    return {"deployments": found}


def check_deployable(plane: ControlPlane, access: ArtifactAccess, version: int) -> None:
    """Before a deploy in a secured fleet: a bundle whose owner is not an admin
    (now) holds to the tenant policy and to the hosts its owner is granted (now),
    whatever was allowed when it was uploaded."""
    owner = plane.accounts.get(access.owner_id) if access.owner_id else None
    if plane.artifacts.detail(access.id)["type"] != "bundle":
        return
    granted = plane.tenant_grant(owner) if owner is not None else ()
    if granted is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "bundle"
        with archive.open("wb") as out:
            for chunk in plane.artifacts.read(access.id, version):
                out.write(chunk)
        refuse_operator_features(bundle_manifests(archive), granted)
