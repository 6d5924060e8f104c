"""Manifest structure and loading, with errors that name file, JSON path and reason.

``modrun.json`` (or the legacy ``hypermode.json``) in the plugins directory.
Top-level keys: ``connections``, ``models``, ``plugins`` (and, in legacy
manifests, ``hosts``: http connections under their old name). Values may hold
``{{SECRET}}`` placeholders; they are resolved by ``modrun.secrets``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modrun.errors import ConfigError
from modrun.manifest import jsonc

MANIFEST_NAMES = ("modrun.json", "hypermode.json", "modus.json")
MODUS_MANIFEST = "modus.json"
NAME_PATTERN = r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$"
_NAME = re.compile(NAME_PATTERN)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class HttpConnection(_Strict):
    """An HTTP API plugins and models may call. ``baseUrl`` allows every URL
    under it; ``endpoint`` allows exactly one URL."""

    type: Literal["http"] = "http"
    base_url: str | None = Field(None, alias="baseUrl", description="URL prefix, ending with /")
    endpoint: str | None = Field(None, description="A single allowed URL")
    headers: dict[str, str] = Field(default_factory=dict, description="Added to every request")
    query_parameters: dict[str, str] = Field(
        default_factory=dict, alias="queryParameters", description="Added to every request URL"
    )

    @model_validator(mode="after")
    def _one_target(self) -> HttpConnection:
        if (self.base_url is None) == (self.endpoint is None):
            raise ValueError("give exactly one of baseUrl or endpoint")
        if self.base_url is not None and not self.base_url.endswith("/"):
            raise ValueError("baseUrl must end with /")
        for url in (self.base_url, self.endpoint):
            if url is not None and not re.match(r"^https?://[^/]", url):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return self


class PostgresConnection(_Strict):
    type: Literal["postgresql"]
    conn_string: str = Field(alias="connString", description="postgresql://user:pass@host:port/db")


class MysqlConnection(_Strict):
    type: Literal["mysql"]
    conn_string: str = Field(alias="connString", description="mysql://user:pass@host:port/db")


class DgraphConnection(_Strict):
    """Dgraph over HTTP (DQL query, mutate, alter)."""

    type: Literal["dgraph"]
    url: str = Field(description="Dgraph Alpha HTTP URL, e.g. http://localhost:8080")
    key: str | None = Field(None, description="API key (sent as Dg-Auth) or ACL token")


Connection = Annotated[
    HttpConnection | PostgresConnection | MysqlConnection | DgraphConnection, Field(discriminator="type")
]

Provider = Literal["openai", "kserve", "generic", "local", "ssh", "embedded"]
EXECUTOR_PROVIDERS = ("local", "ssh", "embedded")


class ModelSpec(_Strict):
    """A model functions may invoke by name: over HTTP (openai, kserve, generic),
    as a process (local, ssh) or in-process (embedded)."""

    provider: Provider = Field(
        "generic",
        description="openai, kserve, generic (HTTP); local, ssh (process over pipes); embedded (in-process)",
    )
    source_model: str = Field("", alias="sourceModel", description="The provider's model name")
    connection: str | None = Field(None, description="An http connection to reach it (HTTP providers)")
    path: str = Field("", description="Appended to the connection's baseUrl")
    timeout: float = Field(60.0, gt=0, description="Seconds per attempt / per request to a process")
    retries: int = Field(2, ge=0, le=10, description="HTTP: extra attempts on 429/5xx/network errors")
    # local and ssh processes
    command: str | None = Field(None, description="Command that runs the model (local, ssh)")
    workdir: str | None = Field(None, description="Directory it runs in (local: relative to the app)")
    protocol: Literal["jsonl", "mer"] = Field("jsonl", description="jsonl, or mer (@!#START#!@ framing)")
    ready: bool = Field(False, description='jsonl: wait for a first line {"ready": true}')
    tokens: dict[str, str] | None = Field(None, description="mer: override ready/start/stop/exit tokens")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment of the process")
    pool: int = Field(1, ge=1, le=64, description="Warm processes")
    queue_timeout: float = Field(
        30.0, gt=0, alias="queueTimeout", description="Seconds to wait for a free process"
    )
    ready_timeout: float = Field(
        60.0, gt=0, alias="readyTimeout", description="Seconds a process may take to start"
    )
    host: str | None = Field(None, description="ssh: host")
    port: int = Field(22, ge=1, le=65535, description="ssh: port")
    user: str | None = Field(None, description="ssh: user")
    password: str | None = Field(None, description="ssh: password (use a {{SECRET}})")
    private_key: str | None = Field(None, alias="privateKey", description="ssh: key file path or PEM text")
    known_hosts: str | None = Field(
        None,
        alias="knownHosts",
        description='ssh: known_hosts file (default ~/.ssh/known_hosts); "none" disables',
    )

    @model_validator(mode="after")
    def _needs(self) -> ModelSpec:
        if self.provider in ("local", "ssh") and not self.command:
            raise ValueError(f"a {self.provider} model needs a command")
        if self.provider == "ssh" and not (self.host and self.user):
            raise ValueError("an ssh model needs host and user")
        if self.provider == "embedded" and not self.source_model:
            raise ValueError("an embedded model needs sourceModel (e.g. vader)")
        return self


class PluginEntry(_Strict):
    config: dict[str, str] = Field(default_factory=dict, description="Values read with Extism config_get")

    @field_validator("config", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
        return value


class Manifest(_Strict):
    schema_: str | None = Field(None, alias="$schema")
    connections: dict[str, Connection] = Field(default_factory=dict)
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    plugins: dict[str, PluginEntry] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _legacy_hosts(cls, data: Any) -> Any:
        """``hosts`` (seed 000's hypermode.json) are http connections."""
        if isinstance(data, dict) and "hosts" in data:
            data = dict(data)
            hosts = data.pop("hosts")
            if not isinstance(hosts, dict):
                raise ValueError("hosts must be an object")
            connections = dict(data.get("connections") or {})
            for name, host in hosts.items():
                if isinstance(host, dict):
                    connections.setdefault(name, {"type": "http", **host})
            data["connections"] = connections
        return data

    @model_validator(mode="after")
    def _references(self) -> Manifest:
        for kind, names in (("connection", self.connections), ("model", self.models)):
            for name in names:
                if len(name) > 63 or not _NAME.match(name):
                    raise ValueError(
                        f"{kind} name {name!r}: use letters, digits and single hyphens, at most 63 characters"
                    )
        for name, model in self.models.items():
            if model.provider in EXECUTOR_PROVIDERS:
                continue
            if model.connection is None:
                if model.provider != "kserve":
                    raise ValueError(f"models.{name}: needs a connection")
                continue
            conn = self.connections.get(model.connection)
            if conn is None:
                raise ValueError(f"models.{name}.connection: no connection named {model.connection!r}")
            if not isinstance(conn, HttpConnection):
                raise ValueError(f"models.{name}.connection: {model.connection!r} is not an http connection")
        return self

    @property
    def plugin_config(self) -> dict[str, dict[str, str]]:
        return {name: entry.config for name, entry in self.plugins.items()}


EMPTY = Manifest.model_validate({})


def find_manifest(app_dir: Path) -> Path | None:
    if not app_dir.is_dir():
        return None
    for name in MANIFEST_NAMES:
        if (app_dir / name).is_file():
            return app_dir / name
    return None


def _location(loc: tuple[Any, ...]) -> str:
    path = "$"
    for part in loc:
        if part in ("http", "postgresql", "mysql", "dgraph", "function-after[_one_target()]"):
            continue  # discriminator tags pydantic adds to the location
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _message(error: Mapping[str, Any]) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def from_modus(doc: Any) -> Any:
    """A Modus project's ``modus.json`` as a modrun manifest: its connections
    are the same; ``endpoints`` (Modus's GraphQL endpoint and its auth) is
    modrun's own API and ignored; a model whose provider modrun does not know
    (``hugging-face``, ...) is reached as Modus reaches every model: the
    guest's JSON posted as is to its connection (``generic``)."""
    if not isinstance(doc, dict):
        return doc
    doc = {k: v for k, v in doc.items() if k != "endpoints"}
    models = doc.get("models")
    if isinstance(models, dict):
        known = set(get_args(Provider))
        doc["models"] = {
            name: {**spec, "provider": spec.get("provider") if spec.get("provider") in known else "generic"}
            if isinstance(spec, dict)
            else spec
            for name, spec in models.items()
        }
    return doc


def parse_manifest(text: str, origin: str) -> Manifest:
    try:
        doc = jsonc.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{origin}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if Path(origin).name == MODUS_MANIFEST:
        doc = from_modus(doc)
    try:
        return Manifest.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(f"{_location(e['loc'])}: {_message(e)}" for e in exc.errors())
        raise ConfigError(f"{origin}: {problems}") from None


def load_manifest(path: Path) -> Manifest:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_manifest(text, str(path))


def json_schema() -> dict[str, Any]:
    """The manifest's JSON Schema (published as docs/manifest.schema.json)."""
    schema = Manifest.model_json_schema(by_alias=True)
    schema["title"] = "modrun manifest"
    schema["$id"] = "https://modrun.dev/schemas/manifest.json"
    return schema
