"""The one table of the control plane's routes (``/api/v2``).

Every route names its access rule and its audit action; ``endpoints()`` (and the
orchestrator's fleet routes, declared the same way) is what the authorization-matrix
tests walk and what the OpenAPI document is built from, so a route cannot be added
without a policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from modrun.control.routes.artifacts import (
    add_tags,
    artifact_detail,
    artifact_permissions,
    begin_upload,
    commit_upload,
    delete_artifact,
    download,
    list_artifacts,
    set_access,
    set_alias,
    set_default_permission,
    team_artifacts,
    upload_chunk,
)
from modrun.control.routes.audit import audit
from modrun.control.routes.deployments import (
    deploy,
    deploy_history,
    deploy_logs,
    deploy_status,
    list_deployments,
    rollback,
    undeploy,
)
from modrun.control.routes.keys import create_key, delete_key, list_keys
from modrun.control.routes.nodes import (
    create_join_token,
    decide,
    delete_join_token,
    join,
    list_join_tokens,
    list_nodes,
    revoke_node,
)
from modrun.control.routes.quotas import get_quota, my_quota, set_quota
from modrun.control.routes.secrets import delete_secret, list_secrets, set_secret
from modrun.control.routes.sessions import (
    login,
    logout,
    oidc_begin,
    oidc_callback,
    refresh,
    session_login,
    session_logout,
    session_refresh,
    session_state,
)
from modrun.control.routes.teams import (
    add_member,
    add_team_admin,
    create_team,
    delete_team,
    list_teams,
    remove_member,
    team_users,
)
from modrun.control.routes.users import create_user, delete_user, demote, info, list_users, promote, signup
from modrun.control.routing import Endpoint, route
from modrun.control.tokens import ALGORITHM

if TYPE_CHECKING:
    from modrun.control.plane import ControlPlane


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
        Endpoint("POST", "/node/join", join, "join", "node.join"),
        Endpoint("GET", "/node/list", list_nodes, "admin", "node.list"),
        Endpoint("DELETE", "/node/{runtime}", revoke_node, "admin", "node.revoke"),
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
        Endpoint("GET", "/deploy/{id}/secrets", list_secrets, "user", "secret.list", artifact="deploy"),
        Endpoint("PUT", "/deploy/{id}/secrets/{name}", set_secret, "user", "secret.set", artifact="deploy"),
        Endpoint(
            "DELETE", "/deploy/{id}/secrets/{name}", delete_secret, "user", "secret.delete", artifact="deploy"
        ),
        Endpoint(
            "GET",
            "/artifact/{id}/permissions",
            artifact_permissions,
            "user",
            "artifact.permissions",
            artifact="read",
        ),
    ]


def routes(plane: ControlPlane) -> list[Route]:
    """The control plane's Starlette routes: the table, and the token issuer's documents."""

    async def jwks(_request: Request) -> JSONResponse:
        return JSONResponse(plane.tokens.jwks())

    async def discovery(_request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": plane.tokens.issuer,
                "jwks_uri": plane.tokens.issuer.rstrip("/") + "/.well-known/jwks.json",
                "id_token_signing_alg_values_supported": [ALGORITHM],
            }
        )

    return [
        Route("/.well-known/jwks.json", jwks),
        Route("/.well-known/openid-configuration", discovery),
        *(route(plane, e) for e in endpoints()),
    ]
