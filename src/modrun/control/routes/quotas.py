"""Quotas of users and teams."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from modrun.control.errors import (
    NotFound,
)
from modrun.control.quotas import Limits, team_subject, user_subject
from modrun.control.routes.deployments import deployments_of
from modrun.control.routing import Call


async def my_quota(call: Call) -> Any:
    who = call.who.user
    plane = call.plane
    runtimes = await run_in_threadpool(deployments_of(call).runtime_count, {}) if plane.deployments else 0
    reports = [await run_in_threadpool(plane.quotas.report, user_subject(who.id), runtimes)]
    for team_id in sorted(who.teams, key=str):
        reports.append(await run_in_threadpool(plane.quotas.report, team_subject(team_id), runtimes))
    return {"quotas": reports}


def _quota_target(call: Call) -> str:
    kind = "user" if call.request.url.path.split("/")[-2] == "user" else "team"
    target = call.uuid_param("id")
    exists = (
        call.plane.accounts.get(target) is not None
        if kind == "user"
        else call.plane.accounts.team_exists(target)
    )
    if not exists:
        raise NotFound(f"no such {kind}")
    return user_subject(target) if kind == "user" else team_subject(target)


async def get_quota(call: Call) -> Any:
    subject = await run_in_threadpool(_quota_target, call)
    runtimes = (
        await run_in_threadpool(deployments_of(call).runtime_count, {}) if call.plane.deployments else 0
    )
    return await run_in_threadpool(call.plane.quotas.report, subject, runtimes)


async def set_quota(call: Call) -> Any:
    subject = await run_in_threadpool(_quota_target, call)
    body = await call.json()
    limits = None if body.get("default") is True else Limits.from_body(body)
    await run_in_threadpool(call.plane.quotas.set, subject, limits)
    return await get_quota(call)
