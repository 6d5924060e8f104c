"""A joined node checks its callers itself, as the gateway does.

When the fleet is secured, ``GET /api/config`` names the token issuers the
fleet trusts (modrun's own, and an OIDC provider's) with their JWKS URLs and
the decide endpoint. The node verifies tokens locally and asks the control
plane, with its join token, whether a subject may invoke the artifact behind
the function it calls; answers are cached for a couple of seconds
(``modrun.control.guard``). Functions of the node's own plugins directory
(no artifact) are for admins; so are the node's management routes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import httpx

from modrun.agent.bundles import PREFIX as BUNDLE_PREFIX
from modrun.api.openai_compat import CHAT_PATH
from modrun.control.guard import NO_ARTIFACT, CallGuard, Decision, Issuer, Issuers, Subject
from modrun.control.tokens import CALL_HEADER, call_audience
from modrun.control.verify import LEEWAY, InvalidToken, JwksKeys, JwtVerifier
from modrun.expiring import ExpiringCache
from modrun.fleet.graphql import BadGraphQL, root_fields
from modrun.http.asgi import FUNCTIONS_PREFIX as PREFIX
from modrun.http.asgi import (
    JSON,
    BodyTooLarge,
    function_key,
    header,
    media_type,
    read_body,
    refusal,
    respond,
    send_refusal,
)
from modrun.http.bases import Bases

log = logging.getLogger("modrun.agent")

PUBLIC = frozenset({"/", "/health", "/metrics"})
MAX_GRAPHQL_BODY = 16 * 1024 * 1024
MAX_VERIFIED = 10_000  # call assertions remembered as verified

Artifacts = Callable[[Iterable[str]], set[str]]


def call_assertions(auth: dict, runtime: str) -> CallAssertions:
    """Checks the gateway's call assertions: signed by the fleet's own issuer, for
    this runtime alone (``auth`` from ``/api/config``)."""
    own = next(entry for entry in auth["issuers"] if entry.get("kind", "user") == "user")
    verifier = JwtVerifier(
        JwksKeys(own["jwks_uri"]),
        own["issuer"],
        call_audience(runtime),
        own["algorithms"],
        float(own.get("leeway", LEEWAY)),
        required=("iss", "aud", "sub", "exp", "iat", "art"),
    )
    return CallAssertions(verifier)


class CallAssertions:
    """The gateway's call assertions for this runtime, each verified once: the
    gateway reuses one per caller, node and artifacts for most of its 30 s, so a
    hot caller costs a dictionary lookup here, not a signature check."""

    def __init__(self, verifier: JwtVerifier) -> None:
        self.verifier = verifier
        self._verified: ExpiringCache[str, tuple[frozenset[str], str]] = ExpiringCache(
            MAX_VERIFIED, time.time
        )

    def check(self, assertion: str, artifacts: set[str]) -> Decision:
        """Allowed when the assertion is good, for this runtime, and covers every
        artifact the call runs here."""
        known = self._verified.get(assertion)  # (artifacts granted, the caller)
        if known is None:
            try:
                claims = self.verifier.decode(assertion)
            except InvalidToken as exc:
                return Decision(401, f"the call's assertion does not hold: {exc}")
            granted = claims.get("art")
            if claims.get("typ") != "call" or not isinstance(granted, list):
                return Decision(401, "not a call assertion")
            known = (frozenset(map(str, granted)), str(claims.get("sub", "")))
            self._verified.put(assertion, known, float(claims["exp"]))
        if not artifacts <= known[0]:
            return Decision(403, "the gateway did not allow what this call runs here")
        return Decision(200, actor=known[1])


def vouched(assertions: CallAssertions | None, assertion: str, artifacts: set[str]) -> Decision:
    if assertions is None:
        return Decision(503, "this node is joining its fleet; try again shortly")
    return assertions.check(assertion, artifacts)


def node_guard(orchestrator: str, token: str | None, auth: dict) -> CallGuard:
    """The guard for a secured fleet's config (``auth`` from ``/api/config``)."""
    trusted = []
    for entry in auth["issuers"]:
        required = ("iss", "aud", "sub", "exp", "iat") + (("jti",) if entry.get("kind") == "user" else ())
        verifier = JwtVerifier(
            JwksKeys(entry["jwks_uri"]),
            entry["issuer"],
            entry["audience"],
            entry["algorithms"],
            float(entry.get("leeway", LEEWAY)),
            required=required,
        )
        trusted.append(Issuer(verifier, entry.get("kind", "user"), entry.get("groups_claim", "groups")))
    return CallGuard(Issuers(trusted), RemoteDecide(orchestrator, token, auth["decide"]))


class RemoteDecide:
    """Asks the control plane (``POST /api/v2/auth/decide``) with the node's credential."""

    def __init__(self, orchestrator: str, token: str | None, path: str) -> None:
        self.orchestrators = Bases(orchestrator)
        self.path = path
        self.headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http: httpx.AsyncClient | None = None

    async def __call__(self, subject: Subject, artifact: str) -> Decision:
        if self._http is None:  # made on the server's event loop, where it is used
            self._http = httpx.AsyncClient(headers=self.headers, timeout=httpx.Timeout(5, connect=2))
        try:
            http, body = self._http, {"subject": subject.as_dict(), "artifact": artifact}
            response = await self.orchestrators.arequest(lambda base: http.post(base + self.path, json=body))
            if response.status_code != 200:
                log.error("the control plane answered %d to a call check", response.status_code)
                return Decision(503, f"the control plane answered {response.status_code} to the call check")
            answer = response.json()
            return Decision(
                int(answer["status"]), str(answer.get("reason", "")), str(answer.get("actor", ""))
            )
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.error("cannot check a call with the control plane: %s", exc)
            return Decision(503, "the control plane cannot be reached to check this call; try again")


class Membership(Protocol):
    """What the guard asks of the fleet agent (``FleetAgent``)."""

    guard: CallGuard | None  # None until the secured fleet's rules are known
    assertions: CallAssertions | None  # the gateway's call assertions for this runtime, likewise

    @property
    def secured(self) -> bool: ...

    def artifacts(self, keys: Iterable[str]) -> set[str]: ...


class GuardedApp:
    """The node's ASGI app behind its fleet's call checks (only while joined to a secured fleet)."""

    def __init__(self, app: Any, agent: Membership) -> None:
        self.app = app
        self.agent = agent

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        agent = self.agent
        if scope["type"] == "websocket" and agent.secured:
            # GraphQL over WebSocket carries no per-operation check here yet: closed
            # on a secured fleet's nodes (subscriptions there: graphql-sse, checked below)
            if (await receive())["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 4403, "reason": "not open on a secured fleet"})
            return
        if scope["type"] != "http" or not agent.secured:
            await self.app(scope, receive, send)
            return
        guard = agent.guard
        if guard is None:  # holding a join token but not joined yet: nothing is open
            await _refuse(send, Decision(503, "this node is joining its fleet; try again shortly"), False)
            return
        method, path = scope["method"], scope["path"]
        graphql = path == "/graphql"
        if method in ("GET", "HEAD") and (
            path in PUBLIC or path.startswith("/console") or (graphql and not scope.get("query_string"))
        ):
            await self.app(scope, receive, send)
            return
        if method == "POST" and graphql:
            try:
                body = await read_body(receive, MAX_GRAPHQL_BODY)
            except BodyTooLarge:
                await respond(send, 413, refusal("request body too large", graphql=True), JSON)
                return
            receive = _replay(body, receive)
            try:
                artifacts = agent.artifacts(sorted(root_fields(body, media_type(scope["headers"]))))
            except BadGraphQL:
                artifacts = {NO_ARTIFACT}  # what cannot be read cannot be checked: admins only
        elif method == "POST" and path.startswith(PREFIX):
            artifacts = agent.artifacts([function_key(path)])
        elif method == "POST" and path == CHAT_PATH:
            try:
                body = await read_body(receive, MAX_GRAPHQL_BODY)
            except BodyTooLarge:
                await respond(send, 413, refusal("request body too large"), JSON)
                return
            receive = _replay(body, receive)
            # a chat-handler function: its artifact's rules; anything else (a
            # manifest model, the operator's own keys behind it, or a name that
            # cannot be read) is for admins
            artifacts = agent.artifacts([_chat_model(body)]) or {NO_ARTIFACT}
        elif path.startswith(BUNDLE_PREFIX):
            artifacts = agent.artifacts([path])
        elif method == "GET" and path == "/functions":
            artifacts = set()  # the catalog: any valid caller
        else:
            artifacts = {NO_ARTIFACT}  # models, inferences, Lambda batches, GraphQL over GET: admins
        assertion = header(scope["headers"], CALL_HEADER.encode())
        if assertion is not None:  # through the gateway, which decided and vouches for the call
            decision = vouched(agent.assertions, assertion, artifacts)
        else:
            decision = await guard.check(scope["headers"], artifacts)
        if not decision.allowed:
            await _refuse(send, decision, graphql)
            return
        await self.app(scope, receive, send)


def _chat_model(body: bytes) -> str:
    try:
        model = json.loads(body).get("model")
    except (ValueError, AttributeError):
        return ""
    return model if isinstance(model, str) and model else ""


def _replay(body: bytes, receive: Callable[[], Any]) -> Callable[[], Any]:
    """The body the guard read, once, then the connection's own messages: a
    streaming answer watches them for the client's disconnect."""
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _refuse(send: Any, decision: Decision, graphql: bool) -> None:
    await send_refusal(send, decision.status, decision.reason or "not allowed", graphql)
