"""Settings of ``modrun orchestrator``: flags over seed 003's ``config.json``.

config.json keys (SilverLine's): ``http``, ``http_port``, ``realm``, ``mqtt``,
``mqtt_port``, ``use_ssl``, ``mqtt_username``, ``pwd`` (a file holding the
broker password), ``log_dir``. A config that names a broker means "use it";
with neither it nor ``--mqtt`` the orchestrator starts an embedded broker.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modrun.config.defaults import default_storage_path
from modrun.control.oidc import OidcSettings
from modrun.control.quotas import Limits
from modrun.control.tenant_hosts import TenantHosts
from modrun.errors import ConfigError
from modrun.mqtt.url import BrokerAddress
from modrun.orchestrator.node_urls import Network

DEFAULT_PORT = 8000
DEFAULT_BROKER_PORT = 1883
DEFAULT_KEEPALIVE = 5.0
DEFAULT_MAX_FILE = 256 * 1024 * 1024
DEFAULT_MAX_RESPONSE = 64 * 1024 * 1024


@dataclass
class OrchestratorSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    realm: str = "realm"
    mqtt: BrokerAddress | None = None  # None: embedded broker
    broker_host: str = "127.0.0.1"
    broker_port: int = DEFAULT_BROKER_PORT
    storage_path: Path = field(default_factory=default_storage_path)
    db: str | None = None
    migrate: bool = False
    keepalive: float = DEFAULT_KEEPALIVE
    keepalive_timeout: float | None = None
    scheduler: str = "least-loaded"
    files_s3: str | None = None  # s3://bucket/prefix for the file store
    max_file_size: int = DEFAULT_MAX_FILE
    gateway_wait: float = 10.0
    gateway_timeout: float = 60.0
    gateway_max_response: int = DEFAULT_MAX_RESPONSE
    node_networks: tuple[Network, ...] = ()  # where a node's URL must be (empty: anywhere)
    mosquitto_files: Path | None = None  # keep an external Mosquitto's passwd and acl files here
    mosquitto_reload: str | None = None  # the command that makes Mosquitto read them again
    log_dir: Path | None = None
    auth: str = "basic"  # basic | oidc | none
    signup: bool = True
    issuer: str | None = None  # default: http://host:port
    max_key_lifetime: float = 90 * 86400
    max_artifact_size: int = 1 << 30
    oidc: OidcSettings | None = None  # with auth = "oidc"
    encrypt_artifacts: bool = False  # key: MODRUN_ARTIFACTS_KEY (the secrets layer)
    default_quota: Limits = field(default_factory=Limits)
    tenant_hosts: TenantHosts = field(default_factory=TenantHosts)  # where tenants' HTTP may go
    jsonlogs: bool = False
    log_level: str = "info"
    instance: str | None = None  # its name among several orchestrators (default HOSTNAME:PORT)
    advertise_url: str | None = None  # where the others send it writes (default http://HOST:PORT)
    candidate: bool = True  # False for ``modrun gateway``: it never leads

    @property
    def instance_name(self) -> str:
        return self.instance or f"{socket.gethostname()}:{self.port}"

    @property
    def own_url(self) -> str:
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = socket.gethostname() if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def ka_timeout(self) -> float:
        return self.keepalive_timeout if self.keepalive_timeout else 3 * self.keepalive

    @property
    def quiet_after(self) -> float:
        """Silence after which the gateway passes a node over: two keepalives missed."""
        return min(self.ka_timeout, 2 * self.keepalive + 0.5)

    @property
    def broker(self) -> BrokerAddress:
        """The broker the orchestrator itself connects to."""
        return self.mqtt or BrokerAddress(self.broker_host, self.broker_port)


def read_config(path: Path) -> dict[str, Any]:
    """Seed 003's config.json as settings keywords (only the keys it has)."""
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"--config {path}: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"--config {path}: expected a JSON object")
    out: dict[str, Any] = {}
    if "http" in raw:
        out["host"] = str(raw["http"])
    if "http_port" in raw:
        out["port"] = _int(raw["http_port"], "http_port", path)
    if "realm" in raw:
        out["realm"] = str(raw["realm"])
    if "log_dir" in raw:
        out["log_dir"] = (path.parent / str(raw["log_dir"])).resolve()
    if "mqtt" in raw:
        password = None
        if raw.get("pwd"):
            pwd = path.parent / str(raw["pwd"])
            if pwd.is_file():
                password = pwd.read_text().strip()
        out["mqtt"] = BrokerAddress(
            host=str(raw["mqtt"]),
            port=_int(raw.get("mqtt_port", DEFAULT_BROKER_PORT), "mqtt_port", path),
            tls=bool(raw.get("use_ssl", False)),
            username=str(raw["mqtt_username"]) if raw.get("mqtt_username") and password else None,
            password=password,
        )
    return out


def _int(value: Any, key: str, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ConfigError(f"--config {path}: {key} must be a port number, not {value!r}")
    return int(value)
