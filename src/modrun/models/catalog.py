"""The node's models: the manifest's, plus the registry's, with their latest weights.

Manifest models win over registry models of the same name (a warning says so,
once). Registry specs are validated and their placeholders resolved like the
manifest's. The newest weights/params version of a model reaches its
processes as ``MODRUN_MODEL_WEIGHTS_VERSION``, ``MODRUN_MODEL_PARAMS`` (JSON)
and ``MODRUN_MODEL_WEIGHTS_FILE`` (written under ``weights_dir``), so a new
version changes the spec and restarts them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.connections.resolve import resolve
from modrun.db import registry
from modrun.errors import ConfigError
from modrun.manifest.model import Manifest, ModelSpec
from modrun.models.executors.registry import ExecutorRegistry
from modrun.secrets.sources import SecretSource

log = logging.getLogger("modrun.models")


class ModelCatalog:
    def __init__(self, db: Engine, executors: ExecutorRegistry, weights_dir: Path) -> None:
        self.db = db
        self.executors = executors
        self.weights_dir = weights_dir
        self.models: dict[str, ModelSpec] = {}
        self.sources: dict[str, str] = {}
        self._warned: set[str] = set()

    def sync(self, manifest_models: Mapping[str, ModelSpec], secrets: SecretSource | None) -> None:
        """Recompute the models and start, restart or stop executors to match."""
        try:
            raw = registry.load(self.db)
            weights = registry.latest_weights(self.db)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("model registry unavailable (%s); keeping the models loaded", type(exc).__name__)
            return
        merged: dict[str, ModelSpec] = dict(manifest_models)
        sources = dict.fromkeys(merged, "manifest")
        for name, spec in self._registry_models(raw, merged, secrets).items():
            merged[name] = spec
            sources[name] = "registry"
        for name, (version, params, blob) in weights.items():
            if name in merged:
                merged[name] = self._with_weights(name, merged[name], version, params, blob)
        if merged != self.models:
            self.models, self.sources = merged, sources
            self.executors.sync(merged)

    def _registry_models(
        self, raw: Mapping[str, dict], taken: Mapping[str, ModelSpec], secrets: SecretSource | None
    ) -> dict[str, ModelSpec]:
        found: dict[str, ModelSpec] = {}
        for name, doc in raw.items():
            if name in taken:
                if name not in self._warned:
                    log.warning("registry model %s is shadowed by the manifest's model of that name", name)
                    self._warned.add(name)
                continue
            try:
                found[name] = registry.validate(name, doc)
            except ConfigError as exc:
                log.error("registry: %s", exc)
        if found and secrets is not None:
            found = resolve(
                Manifest.model_construct(connections={}, models=found, plugins={}), secrets
            ).models
        return found

    def _with_weights(
        self, name: str, spec: ModelSpec, version: int, params: dict, blob: bytes | None
    ) -> ModelSpec:
        env = {
            **spec.env,
            "MODRUN_MODEL_WEIGHTS_VERSION": str(version),
            "MODRUN_MODEL_PARAMS": json.dumps(params),
        }
        if blob is not None:
            path = self.weights_dir / name / f"{version}.bin"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(blob)
            env["MODRUN_MODEL_WEIGHTS_FILE"] = str(path)
        return spec.model_copy(update={"env": env})
