"""The control plane's routes (``/api/v2``), declared in one table.

Every route names its access rule and its audit action; ``endpoints()`` (and
the orchestrator's fleet routes, declared the same way) is what the
authorization-matrix tests walk, so a route cannot be added without a
policy. Rules: ``public`` (anyone), ``user`` (a user token or an API key),
``session`` (a user token: account and key management are not for API keys),
``admin`` (a global admin's token), ``node`` (a node's join token, or an
admin), ``upload`` (an upload token). A ``target`` rule (team admin, team
member) is checked by the handler against the path's team: 403. Mutating and denied requests are audited after
the outcome is known.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from modrun.api.params import limit_param
from modrun.config.units import parse_duration, parse_size
from modrun.control.accounts import AccountError
from modrun.control.auth import REFRESH_COOKIE, SESSION_COOKIE, Principal, Unauthenticated
from modrun.control.guard import Subject
from modrun.control.keys import SCOPES, key_hash, new_key
from modrun.control.oidc_login import LoginFailed
from modrun.control.permissions import ACTIONS, ArtifactAccess, allowed
from modrun.control.quotas import Limits, QuotaExceeded, team_subject, user_subject
from modrun.control.tokens import InvalidToken
from modrun.db.times import utc_now
from modrun.errors import ConfigError
from modrun.orchestrator import labels as label_rules

if TYPE_CHECKING:
    from modrun.control.plane import ControlPlane

PREFIX = "/api/v2"
RULES = ("public", "user", "session", "admin", "upload", "node")
MAX_CHUNK = 64 * 1024 * 1024
QUIET = frozenset({"auth.decide"})  # questions, not changes: audited only when denied


class Denied(Exception):
    def __init__(self, message: str, status: int = 403, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


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
            raise AccountError("the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise AccountError("the body must be a JSON object")
        return body

    def uuid_param(self, name: str) -> uuid.UUID:
        try:
            return uuid.UUID(self.request.path_params[name])
        except ValueError:
            raise AccountError(f"{name}: not an id", 404) from None


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


# -- users -----------------------------------------------------------------------------


async def signup(call: Call) -> Any:
    if not call.plane.signup:
        raise Denied("sign-up is disabled here; ask an admin for an account")
    body = await call.json()
    user = await run_in_threadpool(
        call.plane.accounts.create_user, body.get("username"), body.get("email"), body.get("password")
    )
    return JSONResponse({"user_id": str(user.id)}, status_code=201)


def _basic(request: Request) -> tuple[str, str]:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        raise Denied("log in with HTTP Basic (username or email, password)", 401, _BASIC)
    try:
        login, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Denied("malformed Basic credentials", 401, _BASIC) from None
    if not sep:
        raise Denied("malformed Basic credentials", 401, _BASIC)
    return login, password


_BASIC = {"www-authenticate": 'Basic realm="modrun"'}


async def login(call: Call) -> Any:
    if call.request.headers.get("authorization", "").lower().startswith("bearer "):
        return await _exchange(call)
    login_name, password = _basic(call.request)
    return await run_in_threadpool(
        call.plane.tokens.issue, (await _password_login(call, login_name, password)).id
    )


async def _password_login(call: Call, login_name: str, password: str) -> Any:
    """The user, after the failed-login limits; Denied (401, 429) otherwise."""
    plane = call.plane
    name, address = login_name.lower(), _ip(call.request)
    wait = max(plane.login_limiter.retry_after(name), plane.address_limiter.retry_after(address))
    if wait > 0:
        raise Denied("too many failed logins; try again later", 429, {"retry-after": str(int(wait) + 1)})
    user = await run_in_threadpool(call.plane.accounts.authenticate, login_name, password)
    if user is None:
        plane.login_limiter.failed(name)
        plane.address_limiter.failed(address)
        raise Denied("wrong username, email or password", 401, _BASIC)
    return user


# -- console sessions (cookies) ------------------------------------------------------


def _session_response(call: Call, tokens: dict, body: dict | None = None) -> Response:
    """``body`` (default: the user id and expiry) with the session cookies set."""
    secure = call.request.url.scheme == "https"
    response = JSONResponse(body or {"user_id": tokens["user_id"], "expires_in": tokens["expires_in"]})
    response.set_cookie(
        SESSION_COOKIE, tokens["access_token"], httponly=True, samesite="strict", secure=secure, path="/"
    )
    response.set_cookie(
        REFRESH_COOKIE,
        tokens["refresh_token"],
        max_age=int(call.plane.tokens.refresh_ttl),
        httponly=True,
        samesite="strict",
        secure=secure,
        path=PREFIX + "/session",
    )
    return response


async def session_login(call: Call) -> Any:
    """The console signs in: ``{username, password}`` -> HttpOnly cookies, no token in the body."""
    body = await call.json()
    name, password = body.get("username"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise AccountError("give username and password")
    user = await _password_login(call, name, password)
    return _session_response(call, await run_in_threadpool(call.plane.tokens.issue, user.id))


async def session_state(call: Call) -> Any:
    """Who the console is signed in as: ``{"user": {...}}``, or ``{"user": null}``
    (200 either way, so a signed-out console loads without errors). An expired
    access cookie is renewed here from the refresh cookie."""
    principal = None
    try:
        principal = await run_in_threadpool(call.plane.auth.identify, call.request)
    except Unauthenticated:
        principal = None
    if principal is not None and principal.session:
        return {"user": await info(Call(call.request, call.plane, principal))}
    token = call.request.cookies.get(REFRESH_COOKIE)
    if token:
        try:
            tokens = await run_in_threadpool(call.plane.tokens.refresh, token)
        except InvalidToken:
            tokens = None
        if tokens is not None:
            user = await run_in_threadpool(call.plane.accounts.get, uuid.UUID(tokens["user_id"]))
            if user is not None:
                body = await info(Call(call.request, call.plane, Principal(user)))
                return _session_response(call, tokens, {"user": body})
    login = call.plane.oidc_login
    return {"user": None, "oidc": bool(login and login.available)}


OIDC_STATE_COOKIE = "modrun_oidc_state"


def _next_path(value: str | None) -> str:
    """Where to land after signing in: a path on this site, never another site."""
    return value if value and value.startswith("/") and not value.startswith("//") else "/console"


async def oidc_begin(call: Call) -> Any:
    """The console's "Sign in with ..." link: off to the provider (code flow, PKCE)."""
    login = call.plane.oidc_login
    if login is None or not login.available:
        raise AccountError("sign-in through an identity provider is not configured (--auth oidc)", 404)
    params = call.request.query_params
    redirect_uri = str(call.request.base_url).rstrip("/") + PREFIX + "/session/oidc/callback"
    try:
        url, state = login.begin(redirect_uri, _next_path(params.get("next")), params.get("login_hint"))
    except LoginFailed as exc:
        raise Denied(str(exc), 429) from None
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        OIDC_STATE_COOKIE,
        state,
        max_age=600,
        httponly=True,
        samesite="lax",  # it must come back with the provider's redirect, a cross-site navigation
        secure=call.request.url.scheme == "https",
        path=PREFIX + "/session/oidc",
    )
    return response


async def oidc_callback(call: Call) -> Any:
    """The provider sends the browser back with a code: a console session, or the
    login page with the reason."""
    login = call.plane.oidc_login
    if login is None:
        raise AccountError("sign-in through an identity provider is not configured (--auth oidc)", 404)
    params = call.request.query_params
    try:
        if params.get("error"):
            raise LoginFailed(
                f"the identity provider says: {params.get('error_description') or params['error']}"
            )
        claims, next_path = await run_in_threadpool(
            login.finish,
            params.get("code", ""),
            params.get("state", ""),
            call.request.cookies.get(OIDC_STATE_COOKIE),
        )
        issuer = login.id_tokens.issuer
        groups = claims.get(call.plane.oidc.groups_claim or "groups") if call.plane.oidc else None
        subject = Subject(
            "oidc",
            str(claims["sub"]),
            issuer,
            groups=tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else (),
            name=str(claims.get("preferred_username") or ""),
            email=str(claims.get("email") or ""),
        )
        principal = await run_in_threadpool(call.plane.auth.principal, subject)
    except (LoginFailed, Unauthenticated, KeyError) as exc:
        await run_in_threadpool(
            call.plane.audit.record, "anonymous", "session.oidc", None, 401, _ip(call.request)
        )
        return RedirectResponse(f"/console/login?{urlencode({'error': str(exc)})}", status_code=303)
    tokens = await run_in_threadpool(call.plane.tokens.issue, principal.user.id)
    response = _session_response(call, tokens)
    redirect = RedirectResponse(next_path, status_code=303)
    for name, value in response.headers.items():
        if name == "set-cookie":
            redirect.headers.append("set-cookie", value)
    redirect.delete_cookie(OIDC_STATE_COOKIE, path=PREFIX + "/session/oidc")
    return redirect


async def session_refresh(call: Call) -> Any:
    token = call.request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise Denied("no console session; sign in", 401)
    try:
        tokens = await run_in_threadpool(call.plane.tokens.refresh, token)
    except InvalidToken as exc:
        raise Denied(str(exc), 401) from None
    return _session_response(call, tokens)


async def session_logout(call: Call) -> Any:
    if call.who.claims is not None:
        await run_in_threadpool(call.plane.tokens.revoke, call.who.claims)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(REFRESH_COOKIE, path=PREFIX + "/session")
    return response


async def _exchange(call: Call) -> Any:
    """An identity provider's token (``--auth oidc``) for modrun's own tokens,
    which nodes verify without knowing the provider."""
    if call.plane.oidc is None:
        raise Denied("log in with HTTP Basic; bearer tokens are exchanged only with --auth oidc", 401, _BASIC)
    principal = await run_in_threadpool(call.plane.auth.identify, call.request)
    if principal is None or not principal.session or principal.claims is not None:
        raise Denied("send the identity provider's token (Authorization: Bearer)", 401)
    return await run_in_threadpool(call.plane.tokens.issue, principal.user.id)


async def refresh(call: Call) -> Any:
    token = (await call.json()).get("refresh_token")
    if not isinstance(token, str):
        raise AccountError("refresh_token: missing")
    try:
        return await run_in_threadpool(call.plane.tokens.refresh, token)
    except InvalidToken as exc:
        raise Denied(str(exc), 401) from None


async def logout(call: Call) -> Any:
    if call.who.claims is not None:
        await run_in_threadpool(call.plane.tokens.revoke, call.who.claims)
    return Response(status_code=204)


async def info(call: Call) -> Any:
    user = call.who.user
    names = {t["id"]: t["name"] for t in call.plane.accounts.teams(set(user.teams))}
    out = user.public() | {
        "teams": [{"id": str(t), "name": names.get(str(t)), "team_admin": a} for t, a in user.teams.items()]
    }
    if call.who.key is not None:
        out["api_key"] = {"id": str(call.who.key.id), "scopes": sorted(call.who.key.scopes)}
    return out


async def list_users(call: Call) -> Any:
    admin = call.who.user.admin
    return {"users": [u.public(with_email=admin) for u in await run_in_threadpool(call.plane.accounts.list)]}


async def create_user(call: Call) -> Any:
    body = await call.json()
    user = await run_in_threadpool(
        call.plane.accounts.create_user,
        body.get("username"),
        body.get("email"),
        body.get("password"),
        bool(body.get("admin", False)),
    )
    return JSONResponse({"user_id": str(user.id)}, status_code=201)


async def delete_user(call: Call) -> Any:
    user_id = call.uuid_param("id")
    if user_id == call.who.user.id:
        raise AccountError("you cannot delete yourself", 422)
    await run_in_threadpool(call.plane.tokens.revoke_user, user_id)
    await run_in_threadpool(call.plane.accounts.delete, user_id)
    return Response(status_code=204)


async def promote(call: Call) -> Any:
    await run_in_threadpool(call.plane.accounts.set_admin, call.uuid_param("id"), True)
    return Response(status_code=204)


async def demote(call: Call) -> Any:
    await run_in_threadpool(call.plane.accounts.set_admin, call.uuid_param("id"), False)
    return Response(status_code=204)


# -- teams -----------------------------------------------------------------------------


async def create_team(call: Call) -> Any:
    body = await call.json()
    return JSONResponse(
        await run_in_threadpool(call.plane.accounts.create_team, body.get("name")), status_code=201
    )


async def list_teams(call: Call) -> Any:
    user = call.who.user
    only = None if user.admin else set(user.teams)
    return {"teams": await run_in_threadpool(call.plane.accounts.teams, only)}


async def delete_team(call: Call) -> Any:
    await run_in_threadpool(call.plane.accounts.delete_team, call.uuid_param("id"))
    return Response(status_code=204)


def _team_admin(call: Call) -> uuid.UUID:
    """The team in the path, when the caller administers it (global or team admin)."""
    team_id = call.uuid_param("id")
    user = call.who.user
    if not (user.admin or user.teams.get(team_id)):
        raise Denied("only a global admin or this team's admins may do that")
    return team_id


async def _set_membership(call: Call, member: bool, team_admin: bool = False) -> Response:
    team_id = _team_admin(call)
    await run_in_threadpool(
        call.plane.accounts.set_member, team_id, call.uuid_param("uid"), member, team_admin
    )
    return Response(status_code=204)


async def add_member(call: Call) -> Any:
    """Add a member, or make a team admin a plain member again."""
    return await _set_membership(call, True)


async def remove_member(call: Call) -> Any:
    return await _set_membership(call, False)


async def add_team_admin(call: Call) -> Any:
    return await _set_membership(call, True, team_admin=True)


async def team_users(call: Call) -> Any:
    team_id = call.uuid_param("id")
    user = call.who.user
    if not (user.admin or team_id in user.teams):
        raise Denied("only members of this team may list it")
    return {"users": await run_in_threadpool(call.plane.accounts.members, team_id)}


# -- API keys ---------------------------------------------------------------------------


def _rfc3339(value: Any) -> datetime:
    if not isinstance(value, str):
        raise AccountError("exp: an RFC 3339 time, e.g. 2026-12-31T00:00:00Z")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise AccountError(f"exp: {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise AccountError("exp: give a time zone (Z or +hh:mm)")
    return moment


async def create_key(call: Call) -> Any:
    if not call.plane.secured:
        raise AccountError("--auth none has no users, so no API keys: every caller is already trusted", 422)
    body = await call.json()
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise AccountError("name: 1 to 200 characters")
    scopes = body.get("scopes", ["invoke"])
    if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
        raise AccountError(f"scopes: a non-empty list of {', '.join(SCOPES)}")
    all_artifacts = bool(body.get("all_artifacts", False))
    artifact_ids = body.get("artifact_ids", [])
    if not isinstance(artifact_ids, list) or not all(isinstance(a, str) for a in artifact_ids):
        raise AccountError("artifact_ids: a list of artifact ids")
    if not all_artifacts and not artifact_ids:
        raise AccountError("give artifact_ids or all_artifacts: true")
    expires = _rfc3339(body.get("exp"))
    limit = utc_now() + timedelta(seconds=call.plane.max_key_lifetime)
    if expires <= utc_now():
        raise AccountError("exp: already past")
    if expires > limit:
        raise AccountError(
            f"exp: at most {call.plane.max_key_lifetime / 86400:g} days ahead (the key lifetime policy)"
        )
    secret = new_key()
    key_id = uuid.uuid4()
    record = {
        "id": key_id,
        "name": name.strip(),
        "key_hash": key_hash(secret),
        "prefix": secret[:12],
        "user_id": call.who.user.id,
        "scopes": sorted(set(scopes)),
        "all_artifacts": all_artifacts,
        "artifact_ids": sorted(set(artifact_ids)),
        "created_at": utc_now(),
        "expires_at": expires,
        "last_used_at": None,
    }
    await run_in_threadpool(call.plane.store_key, record)
    return JSONResponse({"id": str(key_id), "api_key": secret}, status_code=201)


async def list_keys(call: Call) -> Any:
    return {"keys": await run_in_threadpool(call.plane.list_keys, call.who.user.id)}


async def delete_key(call: Call) -> Any:
    body = await call.json()
    try:
        key_id = uuid.UUID(str(body.get("api_key_id")))
    except ValueError:
        raise AccountError("api_key_id: not an id") from None
    owner = None if call.who.user.admin else call.who.user.id
    if not await run_in_threadpool(call.plane.delete_key, key_id, owner):
        raise AccountError("no such key of yours", 404)
    return Response(status_code=204)


# -- audit ------------------------------------------------------------------------------


async def audit(call: Call) -> Any:
    q = call.request.query_params
    since = _rfc3339(q["since"]) if "since" in q else None
    try:
        limit = limit_param(q, 100)
    except ConfigError as exc:
        raise AccountError(str(exc)) from None
    entries = await run_in_threadpool(
        call.plane.audit.query, q.get("actor"), q.get("action"), q.get("outcome"), since, limit
    )
    return {"entries": entries}


# -- artifacts --------------------------------------------------------------------------


def _artifact_id(call: Call) -> uuid.UUID:
    return call.uuid_param("id")


async def begin_upload(call: Call) -> Any:
    body = await call.json()
    who = call.who
    name, type_ = body.get("name"), body.get("type", "plugin")
    existing = await run_in_threadpool(call.plane.artifacts.by_name, name) if isinstance(name, str) else None
    if existing is not None:
        if not allowed(who.user, who.key, existing, "write"):
            raise Denied(f"pushing a version of {name!r} needs Write on it")
    elif who.key is not None and not (who.key.all_artifacts and "deploy" in who.key.scopes):
        raise Denied("creating an artifact with an API key needs the deploy scope on all artifacts")
    subjects = _quota_subjects(existing) if existing else [user_subject(who.user.id)]
    room = await run_in_threadpool(call.plane.quotas.room_for_bytes, subjects)
    if room == 0:
        raise QuotaExceeded("artifact storage quota used up: delete versions or ask an admin for more")
    token = await run_in_threadpool(
        call.plane.artifacts.begin,
        who.user.id if call.plane.secured else None,
        who.actor,
        name,
        type_,
        existing.id if existing else None,
        room,
    )
    return JSONResponse({"token": token}, status_code=201)


def _upload_token(call: Call) -> str:
    scheme, _, token = call.request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.startswith("mru_"):
        raise Denied("send the upload token from POST /artifact/upload as Authorization: Bearer", 401)
    return token.strip()


async def upload_chunk(call: Call) -> Any:
    token = _upload_token(call)
    call.plane.artifacts.upload(token)  # unknown token: 401 before reading the body
    index = call.request.path_params["chunk"]
    data = bytearray()
    async for part in call.request.stream():
        data += part
        if len(data) > MAX_CHUNK:
            call.plane.artifacts.abort(token)
            raise Denied(f"a chunk may hold at most {MAX_CHUNK} bytes; the upload is cancelled", 413)
    upload = await run_in_threadpool(call.plane.artifacts.add_chunk, token, index, bytes(data))
    return {"chunk": index, "size": upload.receiver.size}


async def commit_upload(call: Call) -> Any:
    token = _upload_token(call)
    body = await call.json()
    result = await run_in_threadpool(call.plane.artifacts.commit, token, body.get("sha256"))
    return JSONResponse(result, status_code=201)


async def list_artifacts(call: Call) -> Any:
    who = call.who
    rows = await run_in_threadpool(call.plane.artifacts.all)
    return {"artifacts": [summary for access, summary in rows if allowed(who.user, who.key, access, "read")]}


async def artifact_detail(call: Call) -> Any:
    return await run_in_threadpool(call.plane.artifacts.detail, _artifact_id(call))


async def download(call: Call) -> Any:
    artifact_id = _artifact_id(call)
    version, sha256 = await run_in_threadpool(
        call.plane.artifacts.resolve, artifact_id, call.request.query_params.get("version")
    )
    store = call.plane.artifacts
    headers = {"x-checksum-sha256": sha256, "x-artifact-version": str(version), "etag": f'"{sha256}"'}
    local = await run_in_threadpool(store.local_file, artifact_id, version)
    if local is not None:
        return FileResponse(local, headers=headers, media_type="application/octet-stream")
    chunks = await run_in_threadpool(store.read, artifact_id, version)
    return StreamingResponse(chunks, headers=headers, media_type="application/octet-stream")


async def delete_artifact(call: Call) -> Any:
    artifact_id = _artifact_id(call)
    deployer = call.plane.deployer
    if deployer is not None and await run_in_threadpool(deployer.deployed, artifact_id):
        raise AccountError("the artifact is deployed: undeploy it first (DELETE /deploy/{id})", 422)
    await run_in_threadpool(call.plane.artifacts.delete, artifact_id)
    if deployer is not None:
        await run_in_threadpool(deployer.forget, artifact_id)
    return Response(status_code=204)


async def set_alias(call: Call) -> Any:
    body = await call.json()
    version = body.get("version")
    if not isinstance(version, int):
        raise AccountError("version: a version number")
    await run_in_threadpool(call.plane.artifacts.set_alias, _artifact_id(call), body.get("alias"), version)
    return Response(status_code=204)


async def add_tags(call: Call) -> Any:
    body = await call.json()
    version = body.get("version")
    if not isinstance(version, int):
        raise AccountError("version: a version number")
    tags = await run_in_threadpool(
        call.plane.artifacts.add_tags, _artifact_id(call), version, body.get("tags")
    )
    return {"version": version, "tags": tags}


async def set_access(call: Call) -> Any:
    body = await call.json()
    team = body.get("team_id")
    try:
        team_id = uuid.UUID(team) if team else None
    except (ValueError, TypeError):
        raise AccountError("team_id: not an id") from None
    if team_id is not None and not await run_in_threadpool(call.plane.accounts.team_exists, team_id):
        raise AccountError("no such team", 404)
    await run_in_threadpool(call.plane.artifacts.set_access, _artifact_id(call), body.get("access"), team_id)
    return Response(status_code=204)


async def set_default_permission(call: Call) -> Any:
    body = await call.json()
    await run_in_threadpool(
        call.plane.artifacts.set_default_permission, _artifact_id(call), body.get("permission")
    )
    return Response(status_code=204)


async def artifact_permissions(call: Call) -> Any:
    from modrun.control.permissions import level

    access = await run_in_threadpool(call.plane.artifacts.access, _artifact_id(call))
    assert access is not None
    return {
        "access": access.access,
        "team_id": str(access.team_id) if access.team_id else None,
        "default_permission": access.default_permission,
        "owner_id": str(access.owner_id) if access.owner_id else None,
        "yours": level(call.who.user, access).name.lower(),
    }


async def team_artifacts(call: Call) -> Any:
    team_id = call.uuid_param("id")
    user = call.who.user
    if not (user.admin or team_id in user.teams):
        raise Denied("only members of this team may list it")
    rows = await run_in_threadpool(call.plane.artifacts.all, team_id)
    return {"artifacts": [summary for access, summary in rows if allowed(user, call.who.key, access, "read")]}


# -- deployments -------------------------------------------------------------------------


def _deployer(call: Call) -> Any:
    deployer = call.plane.deployer
    if deployer is None:
        raise Denied("deployments need the fleet (this control plane runs without one)", 503)
    return deployer


async def deploy(call: Call) -> Any:
    body = await call.json()
    artifact_id = _artifact_id(call)
    wanted = body.get("version", body.get("alias"))
    if wanted is not None and not isinstance(wanted, int | str):
        raise AccountError("version: a number, or alias: a name")
    version, _ = await run_in_threadpool(
        call.plane.artifacts.resolve, artifact_id, str(wanted) if wanted is not None else None
    )
    replicas = body.get("replicas", 1)
    if replicas == "daemon":
        replicas = -1
    elif not isinstance(replicas, int) or isinstance(replicas, bool) or not 0 <= replicas <= 1000:
        raise AccountError('replicas: 0 to 1000, or "daemon" (one on every runtime)')
    try:
        labels = label_rules.checked(body.get("labels") or {})
    except label_rules.BadLabel as exc:
        raise AccountError(str(exc)) from None
    limits = _call_limits(body.get("limits") or {})
    deployer = _deployer(call)
    access = await run_in_threadpool(call.plane.artifacts.access, artifact_id)
    assert access is not None  # checked by the route's artifact rule
    runtimes = await run_in_threadpool(deployer.runtime_count, labels)
    await run_in_threadpool(
        call.plane.quotas.check_deploy, _quota_subjects(access), artifact_id, replicas, runtimes
    )
    result = await run_in_threadpool(
        deployer.deploy, artifact_id, version, replicas, call.who.actor, labels, limits
    )
    return JSONResponse(result, status_code=202)


def _call_limits(given: Any) -> dict:
    """``{"timeout": "5s" | seconds, "max_memory": "64MiB" | bytes}`` -> seconds and bytes."""
    if not isinstance(given, dict) or set(given) - {"timeout", "max_memory"}:
        raise AccountError('limits: {"timeout": "5s", "max_memory": "64MiB"} (either may be left out)')
    out: dict = {}
    try:
        if "timeout" in given:
            out["timeout"] = parse_duration(given["timeout"])
        if "max_memory" in given:
            out["max_memory"] = parse_size(given["max_memory"])
    except (ValueError, TypeError, ConfigError) as exc:
        raise AccountError(f"limits: {exc}") from None
    if out.get("timeout", 1) <= 0 or out.get("max_memory", 1) <= 0:
        raise AccountError("limits: timeout and max_memory must be above zero")
    return out


def _quota_subjects(access: ArtifactAccess) -> list[str]:
    subjects = [user_subject(access.owner_id)] if access.owner_id else []
    return subjects + ([team_subject(access.team_id)] if access.team_id else [])


# -- quotas ------------------------------------------------------------------------


async def my_quota(call: Call) -> Any:
    who = call.who.user
    plane = call.plane
    runtimes = await run_in_threadpool(_deployer(call).runtime_count, {}) if plane.deployer else 0
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
        raise AccountError(f"no such {kind}", 404)
    return user_subject(target) if kind == "user" else team_subject(target)


async def get_quota(call: Call) -> Any:
    subject = await run_in_threadpool(_quota_target, call)
    runtimes = await run_in_threadpool(_deployer(call).runtime_count, {}) if call.plane.deployer else 0
    return await run_in_threadpool(call.plane.quotas.report, subject, runtimes)


async def set_quota(call: Call) -> Any:
    subject = await run_in_threadpool(_quota_target, call)
    body = await call.json()
    limits = None if body.get("default") is True else Limits.from_body(body)
    await run_in_threadpool(call.plane.quotas.set, subject, limits)
    return await get_quota(call)


async def deploy_status(call: Call) -> Any:
    return await run_in_threadpool(_deployer(call).status, _artifact_id(call))


async def deploy_logs(call: Call) -> Any:
    return {"logs": await run_in_threadpool(_deployer(call).logs, _artifact_id(call))}


async def deploy_history(call: Call) -> Any:
    return {"history": await run_in_threadpool(_deployer(call).history, _artifact_id(call))}


async def undeploy(call: Call) -> Any:
    await run_in_threadpool(_deployer(call).undeploy, _artifact_id(call), call.who.actor)
    return Response(status_code=204)


async def rollback(call: Call) -> Any:
    return await run_in_threadpool(_deployer(call).rollback, _artifact_id(call), call.who.actor)


async def list_deployments(call: Call) -> Any:
    who = call.who
    found = []
    for deployment in await run_in_threadpool(_deployer(call).all):
        access = await run_in_threadpool(call.plane.artifacts.access, deployment.artifact_id)
        if access is not None and allowed(who.user, who.key, access, "read"):
            status = await run_in_threadpool(_deployer(call).status, deployment.artifact_id)
            found.append(
                {"artifact_id": str(deployment.artifact_id), "deployed_by": deployment.deployed_by} | status
            )
    return {"deployments": found}


# -- nodes -------------------------------------------------------------------------


async def create_join_token(call: Call) -> Any:
    body = await call.json()
    name = body.get("name", "node")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise AccountError("name: 1 to 200 characters")
    expires = _rfc3339(body["exp"]) if body.get("exp") is not None else None
    if expires is not None and expires <= utc_now():
        raise AccountError("exp: already past")
    token_id, token = await run_in_threadpool(
        call.plane.join_tokens.create, name.strip(), call.who.actor, expires
    )
    return JSONResponse({"id": str(token_id), "token": token}, status_code=201)


async def list_join_tokens(call: Call) -> Any:
    return {"tokens": await run_in_threadpool(call.plane.join_tokens.list)}


async def delete_join_token(call: Call) -> Any:
    if not await run_in_threadpool(call.plane.join_tokens.delete, call.uuid_param("id")):
        raise AccountError("no such join token", 404)
    return Response(status_code=204)


async def decide(call: Call) -> Any:
    """A node asks whether a caller may invoke an artifact's functions."""
    body = await call.json()
    artifact = body.get("artifact")
    if not isinstance(artifact, str) or not isinstance(body.get("subject"), dict):
        raise AccountError("give {subject, artifact}")
    try:
        subject = Subject.from_dict(body["subject"])
    except (KeyError, TypeError, ValueError):
        raise AccountError("subject: malformed") from None
    decision = await run_in_threadpool(call.plane.decide, subject, artifact)
    return decision.as_dict()


def endpoints() -> list[Endpoint]:
    """Every control-plane route with its access rule and audit action."""
    return [
        Endpoint("POST", "/user/signup", signup, "public", "user.signup"),
        Endpoint("GET", "/user/login", login, "public", "user.login"),
        Endpoint("POST", "/user/refresh", refresh, "public", "user.refresh"),
        Endpoint("POST", "/user/logout", logout, "session", "user.logout"),
        Endpoint("GET", "/session", session_state, "public", "session.state"),
        Endpoint("POST", "/session", session_login, "public", "session.login"),
        Endpoint("POST", "/session/refresh", session_refresh, "public", "session.refresh"),
        Endpoint("GET", "/session/oidc", oidc_begin, "public", "session.oidc_begin"),
        Endpoint("GET", "/session/oidc/callback", oidc_callback, "public", "session.oidc"),
        Endpoint("DELETE", "/session", session_logout, "session", "session.logout"),
        Endpoint("GET", "/user/info", info, "user", "user.info"),
        Endpoint("GET", "/user/list", list_users, "session", "user.list"),
        Endpoint("POST", "/user/create", create_user, "admin", "user.create"),
        Endpoint("DELETE", "/user/{id}", delete_user, "admin", "user.delete"),
        Endpoint("POST", "/user/{id}/admin", promote, "admin", "user.promote"),
        Endpoint("DELETE", "/user/{id}/admin", demote, "admin", "user.demote"),
        Endpoint("POST", "/team/create", create_team, "admin", "team.create"),
        Endpoint("GET", "/team/list", list_teams, "session", "team.list"),
        Endpoint("DELETE", "/team/{id}", delete_team, "admin", "team.delete"),
        Endpoint("POST", "/team/{id}/users/{uid}", add_member, "session", "team.add_user", "team-admin"),
        Endpoint(
            "DELETE", "/team/{id}/users/{uid}", remove_member, "session", "team.remove_user", "team-admin"
        ),
        Endpoint(
            "POST", "/team/{id}/admins/{uid}", add_team_admin, "session", "team.add_admin", "team-admin"
        ),
        Endpoint(
            "DELETE", "/team/{id}/admins/{uid}", add_member, "session", "team.remove_admin", "team-admin"
        ),
        Endpoint("GET", "/team/{id}/users", team_users, "session", "team.users", "team-member"),
        Endpoint("POST", "/api-key/create", create_key, "session", "api_key.create"),
        Endpoint("GET", "/api-key/list", list_keys, "session", "api_key.list"),
        Endpoint("POST", "/api-key/delete", delete_key, "session", "api_key.delete"),
        Endpoint("GET", "/team/{id}/artifacts", team_artifacts, "session", "team.artifacts", "team-member"),
        Endpoint("GET", "/audit", audit, "admin", "audit.read"),
        Endpoint("GET", "/quota", my_quota, "user", "quota.mine"),
        Endpoint("GET", "/quota/user/{id}", get_quota, "admin", "quota.read"),
        Endpoint("POST", "/quota/user/{id}", set_quota, "admin", "quota.set"),
        Endpoint("GET", "/quota/team/{id}", get_quota, "admin", "quota.read"),
        Endpoint("POST", "/quota/team/{id}", set_quota, "admin", "quota.set"),
        Endpoint("POST", "/node-token", create_join_token, "admin", "node_token.create"),
        Endpoint("GET", "/node-token/list", list_join_tokens, "admin", "node_token.list"),
        Endpoint("DELETE", "/node-token/{id}", delete_join_token, "admin", "node_token.delete"),
        Endpoint("POST", "/auth/decide", decide, "node", "auth.decide"),
        Endpoint("POST", "/artifact/upload", begin_upload, "user", "artifact.upload"),
        Endpoint("POST", "/artifact/upload/commit", commit_upload, "upload", "artifact.commit"),
        Endpoint("POST", "/artifact/upload/{chunk:int}", upload_chunk, "upload", "artifact.chunk"),
        Endpoint("GET", "/artifact/list", list_artifacts, "user", "artifact.list"),
        Endpoint("GET", "/artifact/{id}", artifact_detail, "user", "artifact.read", artifact="read"),
        Endpoint("GET", "/artifact/{id}/download", download, "user", "artifact.download", artifact="read"),
        Endpoint("DELETE", "/artifact/{id}", delete_artifact, "user", "artifact.delete", artifact="own"),
        Endpoint("POST", "/artifact/{id}/alias", set_alias, "user", "artifact.alias", artifact="write"),
        Endpoint("POST", "/artifact/{id}/tags", add_tags, "user", "artifact.tag", artifact="write"),
        Endpoint("POST", "/artifact/{id}/access", set_access, "user", "artifact.access", artifact="own"),
        Endpoint(
            "POST",
            "/artifact/{id}/default-permission",
            set_default_permission,
            "user",
            "artifact.default_permission",
            artifact="own",
        ),
        Endpoint("GET", "/deploy/list", list_deployments, "user", "deploy.list"),
        Endpoint("POST", "/deploy/{id}", deploy, "user", "deploy.create", artifact="deploy"),
        Endpoint("GET", "/deploy/{id}/status", deploy_status, "user", "deploy.status", artifact="read"),
        Endpoint("GET", "/deploy/{id}/logs", deploy_logs, "user", "deploy.logs", artifact="read"),
        Endpoint("GET", "/deploy/{id}/history", deploy_history, "user", "deploy.history", artifact="read"),
        Endpoint("DELETE", "/deploy/{id}", undeploy, "user", "deploy.delete", artifact="deploy"),
        Endpoint("POST", "/deploy/{id}/rollback", rollback, "user", "deploy.rollback", artifact="deploy"),
        Endpoint(
            "GET",
            "/artifact/{id}/permissions",
            artifact_permissions,
            "user",
            "artifact.permissions",
            artifact="read",
        ),
    ]


def _ip(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _check_artifact(
    plane: ControlPlane, action: str, request: Request, principal: Principal | None
) -> None:
    assert principal is not None
    try:
        artifact_id = uuid.UUID(request.path_params["id"])
    except ValueError:
        raise AccountError("no such artifact", 404) from None
    access = await run_in_threadpool(plane.artifacts.access, artifact_id)
    if access is None:
        raise AccountError("no such artifact", 404)
    if not allowed(principal.user, principal.key, access, action):
        scope, needed = ACTIONS[action]
        raise Denied(
            f"needs {needed.name.title()} on this artifact"
            + (f" and the {scope!r} key scope" if principal.key else "")
        )


def _check(rule: str, principal: Principal | None) -> None:
    if rule in ("public", "upload"):
        return
    if principal is None:
        raise Denied("sign in: send a token (Authorization: Bearer) or an API key (X-API-Key)", 401)
    if rule == "node":
        if principal.node is None and not (principal.session and principal.user.admin):
            raise Denied("only joined nodes (a join token) and admins may do this")
        return
    if principal.node is not None:
        raise Denied("a join token is for nodes joining the fleet")
    if rule in ("session", "admin") and not principal.session:
        raise Denied("API keys cannot do this; sign in as the user")
    if rule == "admin" and not principal.user.admin:
        raise Denied("only a global admin may do this")


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
        except Unauthenticated as exc:
            response = JSONResponse({"error": str(exc)}, status_code=401)
        except Denied as exc:
            headers = exc.headers
            response = JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)
        except AccountError as exc:
            response = JSONResponse({"error": str(exc)}, status_code=exc.status)
        if (
            (endpoint.method not in ("GET", "HEAD") and endpoint.action not in QUIET)
            or response.status_code in (401, 403, 429)
            or endpoint.action in ("user.login", "session.login")
        ):
            actor = principal.actor if principal else "anonymous"
            target = "/".join(str(v) for v in request.path_params.values()) or None
            await run_in_threadpool(
                plane.audit.record, actor, endpoint.action, target, response.status_code, _ip(request)
            )
        return response

    return Route(endpoint.prefix + endpoint.path, handle, methods=[endpoint.method])
