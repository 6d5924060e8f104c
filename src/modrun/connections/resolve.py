"""The manifest with every placeholder replaced by its secret value.

Missing secrets become empty strings (so a connection still loads) and are
reported, by placeholder and the variable names tried, never by value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modrun.manifest.model import (
    EXECUTOR_PROVIDERS,
    DgraphConnection,
    HttpConnection,
    Manifest,
    ModelSpec,
    MysqlConnection,
    PostgresConnection,
)
from modrun.secrets.placeholders import expand
from modrun.secrets.sources import SecretSource


@dataclass(frozen=True)
class HttpTarget:
    name: str
    base_url: str | None
    endpoint: str | None
    headers: dict[str, str]
    query: dict[str, str]


@dataclass(frozen=True)
class SqlTarget:
    name: str
    kind: str  # "postgresql" | "mysql"
    dsn: str


@dataclass(frozen=True)
class DgraphTarget:
    name: str
    url: str
    key: str | None


@dataclass
class ResolvedManifest:
    http: dict[str, HttpTarget] = field(default_factory=dict)
    sql: dict[str, SqlTarget] = field(default_factory=dict)
    dgraph: dict[str, DgraphTarget] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    plugin_config: dict[str, dict[str, str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)


def resolve(manifest: Manifest, source: SecretSource, default_dgraph: str | None = None) -> ResolvedManifest:
    out = ResolvedManifest()
    users: dict[str, list[str]] = {}
    for model_name, model in manifest.models.items():
        if model.connection:
            users.setdefault(model.connection, []).append(model_name)

    def expander(scope: str):
        def lookup(name: str) -> str:
            value, tried = source.lookup(scope, name, users.get(scope, ()))
            if value is None:
                out.missing.append(f"{scope}: {{{{{name}}}}} is not set (tried {', '.join(tried)})")
                return ""
            out.secrets.add(value)
            return value

        return lambda text: expand(text, lookup)

    for name, conn in manifest.connections.items():
        sub = expander(name)
        if isinstance(conn, HttpConnection):
            out.http[name] = HttpTarget(
                name,
                conn.base_url and sub(conn.base_url),
                conn.endpoint and sub(conn.endpoint),
                {k: sub(v) for k, v in conn.headers.items()},
                {k: sub(v) for k, v in conn.query_parameters.items()},
            )
        elif isinstance(conn, (PostgresConnection, MysqlConnection)):
            out.sql[name] = SqlTarget(name, conn.type, sub(conn.conn_string))
        elif isinstance(conn, DgraphConnection):
            out.dgraph[name] = DgraphTarget(name, sub(conn.url).rstrip("/"), conn.key and sub(conn.key))
    if default_dgraph and "dgraph" not in manifest.connections:
        out.dgraph["dgraph"] = DgraphTarget("dgraph", default_dgraph.rstrip("/"), None)
    for name, model in manifest.models.items():
        if model.provider in EXECUTOR_PROVIDERS:  # credentials and env may hold secrets
            sub = expander(name)
            model = model.model_copy(
                update={
                    "password": model.password and sub(model.password),
                    "private_key": model.private_key and sub(model.private_key),
                    "env": {k: sub(v) for k, v in model.env.items()},
                }
            )
        out.models[name] = model
    for plugin, entry in manifest.plugins.items():
        sub = expander(plugin)
        out.plugin_config[plugin] = {k: sub(v) for k, v in entry.config.items()}
    return out
