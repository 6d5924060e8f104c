"""Tables of the metadata database (SQLAlchemy Core).

``plugins`` and ``inferences`` follow Modus's columns (reference/modus.md),
with ``inferences`` also recording the model's name, the plugin's name and the
call's status and error. Later features add tables by new migrations.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

plugins = sa.Table(
    "plugins",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("version", sa.Text),
    sa.Column("language", sa.Text),
    sa.Column("sdk", sa.Text, comment="the SDK the plugin was built with"),
    sa.Column("sdk_version", sa.Text),
    sa.Column("build_id", sa.Text, nullable=False, unique=True, comment="SHA-256 of the wasm"),
    sa.Column("build_time", sa.DateTime(timezone=True)),
    sa.Column("git_repo", sa.Text),
    sa.Column("git_commit", sa.Text),
)

inferences = sa.Table(
    "inferences",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("model_hash", sa.Text, nullable=False),
    sa.Column("model_name", sa.Text, nullable=False),
    sa.Column("input", JSONType),
    sa.Column("output", JSONType),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("plugin_id", sa.Uuid, sa.ForeignKey("plugins.id")),
    sa.Column("plugin", sa.Text),
    sa.Column("function", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    sa.Index("ix_inferences_model_started", "model_hash", "started_at"),
    sa.Index("ix_inferences_plugin_id", "plugin_id"),
    sa.Index("ix_inferences_plugin_function", "plugin_id", "function"),
    sa.Index("ix_inferences_function", "function"),
    sa.Index("ix_inferences_started_desc", sa.text("started_at DESC")),
)

model_servers = sa.Table(
    "model_servers",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("conn_type", sa.Text, nullable=False, comment="the model's provider"),
    sa.Column("conn_params", JSONType, nullable=False),
    sa.Column("model_params", JSONType, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
)

model_access = sa.Table(
    "model_access",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("request_id", sa.Uuid, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("start_access", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stop_access", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    sa.Index("ix_model_access_model_start", "model", "start_access"),
)

model_weights = sa.Table(
    "model_weights",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("params", JSONType, nullable=False),
    sa.Column("weights", sa.LargeBinary),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("model", "version", name="uq_model_weights_version"),
)

# -- the orchestrator's fleet state (modrun orchestrator) -------------------

fleet_managers = sa.Table(
    "fleet_managers",
    metadata,
    sa.Column("uuid", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
)

fleet_runtimes = sa.Table(
    "fleet_runtimes",
    metadata,
    sa.Column("uuid", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("runtime_type", sa.Text, nullable=False),
    sa.Column("max_nmodules", sa.Integer, nullable=False),
    sa.Column("apis", JSONType, nullable=False),
    sa.Column("platform", JSONType),
    sa.Column("metadata", JSONType),
    sa.Column("ka_interval_sec", sa.Float, nullable=False),
    sa.Column("ka_ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("parent", sa.Text, comment="manager uuid"),
)

fleet_modules = sa.Table(
    "fleet_modules",
    metadata,
    sa.Column("index", sa.Integer, primary_key=True, autoincrement=False, comment="queue order"),
    sa.Column("uuid", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("file", sa.Text, nullable=False),
    sa.Column("parent", sa.Text),
    sa.Column("pinned", sa.Boolean, nullable=False),
    sa.Column("sha256", sa.Text),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("apis", JSONType, nullable=False),
    sa.Column("args", JSONType, nullable=False),
    sa.Column("channels", JSONType, nullable=False),
    sa.Column("restart", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("exit_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("restarts", sa.Integer, nullable=False),
    sa.Column("group", sa.Text, comment="replicas of one deployment version: kept on distinct runtimes"),
    sa.Column(
        "labels", JSONType, nullable=False, server_default=sa.text("'{}'"), comment="node labels required"
    ),
    sa.Index("ix_fleet_modules_status", "status"),
)

fleet_module_events = sa.Table(
    "fleet_module_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("module", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("runtime", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Index("ix_fleet_module_events_module", "module", "id"),
)

fleet_files = sa.Table(
    "fleet_files",
    metadata,
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.Text, nullable=False, comment="plugin, wasi or unknown (from its exports)"),
    sa.Column("encryption", sa.Text, comment="aes-256-gcm when stored sealed, else null"),
)

fleet_settings = sa.Table(
    "fleet_settings",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", JSONType),
)

fleet_leader = sa.Table(
    "fleet_leader",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False, comment="always 1: one lease"),
    sa.Column("holder", sa.Text, nullable=False, comment="the leading orchestrator's instance name"),
    sa.Column("url", sa.Text, nullable=False, comment="where it takes forwarded writes"),
    sa.Column("term", sa.BigInteger, nullable=False, comment="bumped by every takeover; fences writes"),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scope", sa.Text, nullable=False, comment="name (login and address) or address"),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_login_failures_key", "scope", "key", "at"),
)

fleet_handled = sa.Table(
    "fleet_handled",
    metadata,
    sa.Column("key", sa.Text, primary_key=True, comment="digest of a control message's topic and payload"),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_fleet_handled_at", "at"),
)

# -- the control plane (modrun orchestrator, /api/v2) ----------------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("username", sa.Text, nullable=False, unique=True),
    sa.Column("email", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, comment="argon2id; NULL for users who only sign in through OIDC"),
    sa.Column("external_id", sa.Text, unique=True, comment="'<issuer> <subject>' of an OIDC user"),
    sa.Column("admin", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "tokens_valid_after",
        sa.DateTime(timezone=True),
        nullable=False,
        comment="tokens issued before this are revoked",
    ),
)

teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

user_teams = sa.Table(
    "user_teams",
    metadata,
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("team_id", sa.Uuid, sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("is_team_admin", sa.Boolean, nullable=False),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("id", sa.Text, primary_key=True, comment="SHA-256 of the token"),
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used", sa.Boolean, nullable=False),
    sa.Column("family", sa.Text, index=True, comment="one sign-in and its refreshes: revoked together"),
)

revoked_tokens = sa.Table(
    "revoked_tokens",
    metadata,
    sa.Column("jti", sa.Text, primary_key=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("key_hash", sa.Text, nullable=False, unique=True, comment="SHA-256 of the whole key"),
    sa.Column("prefix", sa.Text, nullable=False, comment="first characters, to recognise a key in lists"),
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("scopes", JSONType, nullable=False),
    sa.Column("all_artifacts", sa.Boolean, nullable=False),
    sa.Column("artifact_ids", JSONType, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.Text, comment="user:<id>, key:<id> or anonymous; never a secret"),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target", sa.Text),
    sa.Column("outcome", sa.Text, nullable=False, comment="ok, denied or error"),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("ip", sa.Text),
    sa.Index("ix_audit_log_at", "at"),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("type", sa.Text, nullable=False, comment="plugin (one .wasm) or bundle (an app directory)"),
    sa.Column("owner_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL")),
    sa.Column("team_id", sa.Uuid, sa.ForeignKey("teams.id", ondelete="SET NULL")),
    sa.Column("access", sa.Text, nullable=False, comment="public, protected or private"),
    sa.Column("default_permission", sa.Text, nullable=False, comment="read or write"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

artifact_versions = sa.Table(
    "artifact_versions",
    metadata,
    sa.Column("artifact_id", sa.Uuid, sa.ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("pushed_by", sa.Text, nullable=False, comment="user:<id> or key:<id>"),
    sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("tags", JSONType, nullable=False),
    sa.Column("encryption", sa.Text, comment="aes-256-gcm when stored encrypted, else null"),
)

artifact_aliases = sa.Table(
    "artifact_aliases",
    metadata,
    sa.Column("artifact_id", sa.Uuid, sa.ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("alias", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("artifact_id", sa.Uuid, sa.ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("replicas", sa.Integer, nullable=False, comment="-1: one on every runtime (daemon)"),
    sa.Column("deployed_by", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_good_version", sa.Integer, comment="the newest version that was complete"),
    sa.Column(
        "labels", JSONType, nullable=False, server_default=sa.text("'{}'"), comment="node labels required"
    ),
    sa.Column(
        "limits",
        JSONType,
        nullable=False,
        server_default=sa.text("'{}'"),
        comment="per-call limits: timeout (s), max_memory (bytes)",
    ),
)

node_tokens = sa.Table(
    "node_tokens",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True, comment="SHA-256 of the join token"),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
)

node_credentials = sa.Table(
    "node_credentials",
    metadata,
    sa.Column("runtime", sa.Uuid, primary_key=True, comment="the one runtime this credential speaks for"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("secret_hash", sa.Text, nullable=False, unique=True, comment="SHA-256 of the credential"),
    sa.Column("join_token", sa.Uuid, comment="the join token it was exchanged for"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True), comment="set: the runtime is cut off for good"),
)

deployment_secrets = sa.Table(
    "deployment_secrets",
    metadata,
    sa.Column("artifact_id", sa.Uuid, sa.ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("sealed", sa.LargeBinary, nullable=False, comment="AES-256-GCM, bound to (artifact, name)"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
)

quotas = sa.Table(
    "quotas",
    metadata,
    sa.Column("subject", sa.Text, primary_key=True, comment="user:<id> or team:<id>"),
    sa.Column("artifact_bytes", sa.BigInteger, comment="null: no limit"),
    sa.Column("deployments", sa.Integer),
    sa.Column("replicas", sa.Integer),
)

deploy_history = sa.Table(
    "deploy_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("artifact_id", sa.Uuid, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.Text, nullable=False, comment="user:<id>, key:<id> or reconciler"),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("version", sa.Integer),
    sa.Column("runtime", sa.Text),
    sa.Column("detail", sa.Text),
    sa.Index("ix_deploy_history_artifact", "artifact_id", "id"),
)
