"""Signing in and out: HTTP Basic login, token refresh and exchange, and the console's
cookie sessions (password or the OIDC provider's authorization code flow)."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from modrun.control.auth import REFRESH_COOKIE, SESSION_COOKIE, Principal
from modrun.control.errors import (
    BadRequest,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    Unauthorized,
)
from modrun.control.guard import Subject
from modrun.control.oidc_login import LoginFailed
from modrun.control.routes.users import info
from modrun.control.routing import PREFIX, Call, client_ip
from modrun.control.tokens import InvalidToken


def _basic(request: Request) -> tuple[str, str]:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        raise Unauthorized("log in with HTTP Basic (username or email, password)", _BASIC)
    try:
        login, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed Basic credentials", _BASIC) from None
    if not sep:
        raise Unauthorized("malformed Basic credentials", _BASIC)
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
    """The user, after the failed-login limits; Unauthorized or TooManyRequests otherwise."""
    plane = call.plane
    address = client_ip(call.request)
    # per name *and* address: someone guessing the admin's password locks out
    # their own address, not the admin everywhere
    name = f"{login_name.lower()}\0{address}"
    wait = max(
        await run_in_threadpool(plane.login_limiter.retry_after, name),
        await run_in_threadpool(plane.address_limiter.retry_after, address),
    )
    if wait > 0:
        raise TooManyRequests("too many failed logins; try again later", {"retry-after": str(int(wait) + 1)})
    user = await run_in_threadpool(call.plane.accounts.authenticate, login_name, password)
    if user is None:
        await run_in_threadpool(plane.login_limiter.failed, name)
        await run_in_threadpool(plane.address_limiter.failed, address)
        raise Unauthorized("wrong username, email or password", _BASIC)
    return user


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
        raise BadRequest("give username and password")
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
    """Where to land after signing in: a path on this site, never another site.
    Browsers read ``\\`` as ``/`` and drop tabs and newlines, so ``/\\evil.com`` and
    ``/<TAB>/evil.com`` would leave the site: anything but a plain path is refused."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value)
    ):
        return "/console"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/console"


async def oidc_begin(call: Call) -> Any:
    """The console's "Sign in with ..." link: off to the provider (code flow, PKCE)."""
    login = call.plane.oidc_login
    if login is None or not login.available:
        raise NotFound("sign-in through an identity provider is not configured (--auth oidc)")
    params = call.request.query_params
    redirect_uri = str(call.request.base_url).rstrip("/") + PREFIX + "/session/oidc/callback"
    try:
        url, state = login.begin(redirect_uri, _next_path(params.get("next")), params.get("login_hint"))
    except LoginFailed as exc:
        raise TooManyRequests(str(exc)) from None
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
        raise NotFound("sign-in through an identity provider is not configured (--auth oidc)")
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
            call.plane.audit.record, "anonymous", "session.oidc", None, 401, client_ip(call.request)
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
        raise Unauthorized("no console session; sign in")
    try:
        tokens = await run_in_threadpool(call.plane.tokens.refresh, token)
    except InvalidToken as exc:
        raise Unauthorized(str(exc)) from None
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
        raise Unauthorized(
            "log in with HTTP Basic; bearer tokens are exchanged only with --auth oidc", _BASIC
        )
    principal = await run_in_threadpool(call.plane.auth.identify, call.request)
    if principal is None or not principal.session or principal.claims is not None:
        raise Unauthorized("send the identity provider's token (Authorization: Bearer)")
    return await run_in_threadpool(call.plane.tokens.issue, principal.user.id)


async def refresh(call: Call) -> Any:
    token = (await call.json()).get("refresh_token")
    if not isinstance(token, str):
        raise BadRequest("refresh_token: missing")
    try:
        return await run_in_threadpool(call.plane.tokens.refresh, token)
    except InvalidToken as exc:
        raise Unauthorized(str(exc)) from None


async def logout(call: Call) -> Any:
    if call.who.claims is not None:
        await run_in_threadpool(call.plane.tokens.revoke, call.who.claims)
    return Response(status_code=204)
