"""The control plane's route machinery: an ``Endpoint`` names its path, access rule and audit
action; ``route`` turns one into a Starlette route that authenticates, checks the rule (and the
path's artifact), runs the handler, answers a ``ControlError`` with its status, and audits.

Rules: ``public`` (anyone), ``user`` (a user token or an API key), ``session`` (a user token:
account and key management are not for API keys), ``admin`` (a global admin's token), ``node``
(a node's own credential, or an admin), ``joining`` (that, or a join token: the fleet's config),
``join`` (a join token, exchanged for a node credential), ``upload`` (an upload token). A
``target`` rule (team admin, team member) is checked by the handler against the path's team:
403. Mutating and denied requests are audited after the outcome is known.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modrun.control.auth import Principal
from modrun.control.errors import (
    BadRequest,
    ControlError,
    Forbidden,
    NotFound,
    Unauthorized,
)
from modrun.control.permissions import ACTIONS, allowed

if TYPE_CHECKING:
    from modrun.control.plane import ControlPlane


PREFIX = "/api/v2"


RULES = ("public", "user", "session", "admin", "upload", "node", "joining", "join")


QUIET = frozenset({"auth.decide"})  # questions, not changes: audited only when denied


@dataclass
class Call:
    request: Request
    plane: ControlPlane
    principal: Principal | None

    @property
    def who(self) -> Principal:
        assert self.principal is not None
        return self.principal

    async def json(self) -> dict:
        try:
            body = json.loads(await self.request.body() or b"{}")
        except ValueError:
            raise BadRequest("the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body

    def uuid_param(self, name: str) -> uuid.UUID:
        try:
            return uuid.UUID(self.request.path_params[name])
        except ValueError:
            raise NotFound(f"{name}: not an id") from None


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    rule: str
    action: str
    target: str = ""  # a further rule on the path's team: "team-admin" or "team-member"
    artifact: str = ""  # the permission action on the path's artifact: read, invoke, write, own
    prefix: str = PREFIX

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"{self.method} {self.path}: unknown access rule {self.rule!r}")
        if self.target not in ("", "team-admin", "team-member"):
            raise ValueError(f"{self.method} {self.path}: unknown target rule {self.target!r}")
        if self.artifact and self.artifact not in ACTIONS:
            raise ValueError(f"{self.method} {self.path}: unknown artifact action {self.artifact!r}")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _check_artifact(
    plane: ControlPlane, action: str, request: Request, principal: Principal | None
) -> None:
    assert principal is not None
    try:
        artifact_id = uuid.UUID(request.path_params["id"])
    except ValueError:
        raise NotFound("no such artifact") from None
    access = await run_in_threadpool(plane.artifacts.access, artifact_id)
    if access is None:
        raise NotFound("no such artifact")
    if not allowed(principal.user, principal.key, access, action):
        scope, needed = ACTIONS[action]
        raise Forbidden(
            f"needs {needed.name.title()} on this artifact"
            + (f" and the {scope!r} key scope" if principal.key else "")
        )


def _check(rule: str, principal: Principal | None) -> None:
    if rule in ("public", "upload"):
        return
    if principal is None:
        raise Unauthorized("sign in: send a token (Authorization: Bearer) or an API key (X-API-Key)")
    admin = principal.session and principal.user.admin
    if rule == "join":  # exchanging a join token for a node credential (an admin may join one too)
        if principal.node is None and not admin:
            raise Forbidden("give a join token (mrj_...) to join")
        return
    if rule == "joining":  # the fleet's config: what a node needs before and after joining
        if principal.node is None and principal.runtime is None and not admin:
            raise Forbidden("only nodes (a join token or a node credential) and admins may do this")
        return
    if rule == "node":
        if principal.runtime is None and not admin:
            raise Forbidden(
                "only joined nodes (a node credential) and admins may do this"
                + ("; exchange the join token first (POST /api/v2/node/join)" if principal.node else "")
            )
        return
    if principal.node is not None or principal.runtime is not None:
        raise Forbidden("a join token or node credential is for nodes, not for this")
    if rule in ("session", "admin") and not principal.session:
        raise Forbidden("API keys cannot do this; sign in as the user")
    if rule == "admin" and not principal.user.admin:
        raise Forbidden("only a global admin may do this")


def route(plane: ControlPlane, endpoint: Endpoint) -> Route:
    async def handle(request: Request) -> Response:
        principal = None
        headers: dict[str, str] = {}
        try:
            if endpoint.rule != "upload":  # upload routes carry an upload token instead
                principal = await run_in_threadpool(plane.auth.identify, request)
            _check(endpoint.rule, principal)
            if endpoint.artifact:
                await _check_artifact(plane, endpoint.artifact, request, principal)
            result = await endpoint.handler(Call(request, plane, principal))
            response = result if isinstance(result, Response) else JSONResponse(result)
        except ControlError as exc:
            headers = exc.headers
            response = JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)
        if (
            (endpoint.method not in ("GET", "HEAD") and endpoint.action not in QUIET)
            or response.status_code in (401, 403, 429)
            or endpoint.action in ("user.login", "session.login")
        ):
            actor = principal.actor if principal else "anonymous"
            target = "/".join(str(v) for v in request.path_params.values()) or None
            await run_in_threadpool(
                plane.audit.record, actor, endpoint.action, target, response.status_code, client_ip(request)
            )
        return response

    return Route(endpoint.prefix + endpoint.path, handle, methods=[endpoint.method])


def rfc3339(value: Any) -> datetime:
    if not isinstance(value, str):
        raise BadRequest("exp: an RFC 3339 time, e.g. 2026-12-31T00:00:00Z")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"exp: {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise BadRequest("exp: give a time zone (Z or +hh:mm)")
    return moment
