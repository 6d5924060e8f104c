"""Settings of ``modrun serve`` (filled from flags and ``MODRUN_*`` env vars)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from modrun.api.admission import DEFAULT_MAX_STREAMS, AdmissionLimits
from modrun.api.graphql_limits import GraphQLLimits
from modrun.config.defaults import DEFAULT_MAX_INPUT, DEFAULT_PORT, DEFAULT_REFRESH, default_storage_path
from modrun.config.slot import ProcessSlot
from modrun.wasm.limits import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT, Limits


@dataclass
class ServeSettings:
    plugins: Path = field(default_factory=Path.cwd)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    storage_path: Path = field(default_factory=default_storage_path)
    refresh: float = DEFAULT_REFRESH
    noreload: bool = False
    jsonlogs: bool = False
    log_level: str = "info"
    timeout: float = DEFAULT_TIMEOUT
    max_memory: int = DEFAULT_MAX_MEMORY
    max_input: int = DEFAULT_MAX_INPUT
    graphql_limits: GraphQLLimits = field(default_factory=GraphQLLimits)
    admission: AdmissionLimits = field(default_factory=AdmissionLimits)
    max_streams: int = DEFAULT_MAX_STREAMS
    workers: int = 32
    proxy_headers: bool = False
    model_host: str | None = None
    dgraph: str | None = "http://localhost:8080"
    db: str | None = None
    migrate: bool = False
    history: bool = True
    s3_bucket: str | None = None
    s3_path: str | None = None
    use_aws_storage: bool = False
    use_aws_secrets: bool = False
    secrets_file: Path | None = None  # a JSON object of secret values (a fleet bundle's deployment secrets)
    allow_runtime_changes: bool = field(
        default_factory=lambda: (
            os.environ.get("ALLOW_MODEL_SERVER_RUNTIME_CHANGES", "").lower() in ("1", "true", "yes")
        )
    )
    environment: str = field(default_factory=lambda: os.environ.get("ENVIRONMENT", "dev"))
    orchestrator: str | None = None  # join this fleet (modrun.agent)
    mqtt: str | None = None  # broker override when joining
    runtime_name: str | None = None
    apis: list[str] | None = None
    max_modules: int = 0
    advertise_url: str | None = None
    join_token: str | None = None  # a secured fleet's join token (mrj_...)
    labels: dict[str, str] | None = None  # node labels deployments can require
    processes: int = 1  # node processes sharing the port (modrun.processes)
    slot: ProcessSlot | None = None  # which of them this one is, when there are several

    @property
    def limits(self) -> Limits:
        return Limits(timeout=self.timeout, max_memory=self.max_memory)

    @property
    def module_cache(self) -> Path:
        """Shared by every process: entries are written to a temporary file and renamed."""
        return self.storage_path / "cache" / "modules"

    @property
    def spool_dir(self) -> Path:
        """History spools are per process (each replays and truncates its own)."""
        spool = Path(self.storage_path) / "spool"
        return spool if self.slot is None or self.slot.index == 0 else spool / f"p{self.slot.index}"

    @property
    def mirror_dir(self) -> Path:
        """S3 mirrors are per process (each syncs its own copy with temporary names)."""
        root = Path(self.storage_path).expanduser()
        index = 0 if self.slot is None else self.slot.index
        return root / ("mirror" if index == 0 else f"mirror-p{index}")
