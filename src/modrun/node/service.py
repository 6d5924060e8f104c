"""A runtime node: the one place its parts are created, started and stopped.

The constructor only creates parts (no disk, no database). ``start()`` runs
them in this order: database schema (migrated when allowed) -> history and
access-log writers (adopting spools) -> storage sync -> manifest and secrets ->
models -> plugins (first scan). ``serve()`` then adds the HTTP server, the
reloader and, with ``--orchestrator``, the fleet agent. ``close()`` stops in the
reverse order; calls in flight finish before the workers go.

Handlers and the agent get narrow parts (``api.parts.NodeParts``,
``agent.host.NodeHost``), never the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from modrun.api.admission import Admission, AdmissionLimits
from modrun.api.parts import FunctionParts, ModelParts, NodeParts, StatusParts
from modrun.connections.resolve import ResolvedManifest, resolve
from modrun.db.engine import database_url, make_engine
from modrun.db.history import BatchedWriter, InferenceHistory
from modrun.db.migrate import ensure_schema
from modrun.db.tables import model_access
from modrun.errors import ConfigError
from modrun.hostfns.registry import default_host_functions
from modrun.hostfns.services import NodeServices, build_bundle
from modrun.manifest.model import EMPTY, Manifest, ModelSpec, find_manifest, load_manifest
from modrun.metrics.node import NodeMetrics
from modrun.models.catalog import ModelCatalog
from modrun.models.executors.registry import ExecutorRegistry
from modrun.models.recording import InferenceRecorder
from modrun.node.settings import ServeSettings
from modrun.plugins.discovery import file_stamp
from modrun.plugins.invoker import Invoker
from modrun.plugins.manager import PluginManager
from modrun.plugins.plugin import PluginOptions
from modrun.plugins.records import PluginRecorder
from modrun.redact import REDACTOR
from modrun.secrets.aws import AwsSecrets
from modrun.secrets.sources import SecretSource, dotenv_files, load_dotenv_files, load_secrets_file
from modrun.storage.base import LocalStorage, Storage
from modrun.storage.s3 import s3_storage
from modrun.wasm.engine import WasmEngine
from modrun.wasm.host import LEVELS

log = logging.getLogger("modrun")
DRAIN = 1.0  # seconds a process of several answers with Connection: close before it stops


class Node:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.started_at = time.time()
        self.metrics = NodeMetrics()
        self.engine = WasmEngine(settings.module_cache)
        self.manifest: Manifest = EMPTY
        self.manifest_path: Path | None = None
        self.manifest_error: str | None = None
        self._manifest_stamp: Any = None
        self.db_url = database_url(settings.db, settings.storage_path)
        self.db = make_engine(self.db_url)
        self.history = InferenceHistory(self.db, settings.spool_dir) if settings.history else None
        self.metrics.attach_history(self.history)
        self.access_log = BatchedWriter(self.db, model_access, settings.spool_dir / "model_access.jsonl")
        self.record_inference = InferenceRecorder(self.metrics, self.access_log, self.history)
        self._secret_source: SecretSource | None = None
        self.host_functions = default_host_functions()
        self.services = NodeServices()
        # a tenant's plugin placed on this node gets no connections and no models: the
        # node's manifest is its operator's (a tenant brings its own in a bundle)
        self.tenant_services = NodeServices()
        self.resolved = ResolvedManifest()
        self._resolved_once = False
        self.secret_sources: list = []  # extra secret sources (AWS Secrets Manager)
        self.storage = self._storage()
        self.aws_secrets = AwsSecrets(ttl=max(settings.refresh, 1.0)) if settings.use_aws_secrets else None
        if self.aws_secrets is not None:
            self.secret_sources.append(self.aws_secrets.lookup)
        self.manager = PluginManager(self.storage.app_dir, self.engine, self._options(), self.metrics)
        self.plugin_records = PluginRecorder(self.db)
        self.manager.on_loaded.append(self.plugin_records)
        self.executors = ExecutorRegistry(self._app_dir())  # model processes and embedded models
        self.catalog = ModelCatalog(
            self.db, self.executors, Path(settings.storage_path).expanduser() / "weights"
        )
        self.invoker = Invoker(
            self.engine, self.metrics, max_workers=settings.workers, max_streams=settings.max_streams
        )
        self.admission = Admission(settings.admission)
        # no queue: a stream waiting for a place would be waiting for another stream to end
        self.stream_admission = Admission(AdmissionLimits(max_running=settings.max_streams, max_queue=0))
        self.metrics.attach_admission(self.admission)
        if settings.slot is not None:
            from modrun.metrics.processes import RestartsCollector

            self.metrics.registry.register(RestartsCollector(settings.slot))
        self.agent = self._agent()

    def _agent(self) -> Any:
        """The fleet agent when the node joins an orchestrator (--orchestrator)."""
        s = self.settings
        if not s.orchestrator:
            return None
        from modrun.agent.host import APIS, JoinSettings, NodeHost
        from modrun.agent.join import FleetAgent

        host = NodeHost(
            plugins=self.manager,
            invoker=self.invoker,
            engine=self.engine,
            metrics=self.metrics,
            limits=s.limits,
            storage_path=Path(s.storage_path),
            host=s.host,
            port=s.port,
            db=s.db,
        )
        return FleetAgent(
            host,
            JoinSettings(
                orchestrator=s.orchestrator,
                mqtt=s.mqtt,
                name=s.runtime_name,
                apis=s.apis or list(APIS),
                max_modules=s.max_modules,
                url=s.advertise_url,
                token=s.join_token,
                labels=dict(s.labels or {}),
            ),
        )

    def _storage(self) -> Storage:
        s = self.settings
        if s.use_aws_storage or s.s3_bucket:
            return s3_storage(s.s3_bucket, s.s3_path, s.mirror_dir)
        return LocalStorage(Path(s.plugins))

    def _options(self) -> PluginOptions:
        return PluginOptions(
            limits=self.settings.limits,
            host_functions=self.host_functions,
            log_level=LEVELS.index(_plugin_level(self.settings.log_level)),
            config=self.resolved.plugin_config,
            services=self.services,
            tenant_services=self.tenant_services,
        )

    def parts(self) -> NodeParts:
        """What the HTTP handlers are given (``modrun.api.parts``)."""
        s = self.settings
        return NodeParts(
            functions=FunctionParts(
                plugins=self.manager,
                invoker=self.invoker,
                max_input=s.max_input,
                timeout=s.limits.timeout,
                graphql_limits=s.graphql_limits,
                load_errors=self.load_errors,
            ),
            models=ModelParts(
                catalog=self.catalog,
                executors=self.executors,
                db=self.db,
                access_log=self.access_log,
                invoker=lambda: self.services.current.models,
                sync=self.sync_models,
                allow_changes=s.allow_runtime_changes,
            ),
            status=StatusParts(
                started_at=self.started_at,
                environment=s.environment,
                slot=s.slot,
                describe_storage=self.storage.describe,
                missing_secrets=lambda: list(self.resolved.missing),
                metrics=self.metrics.registry,
                db=self.db,
            ),
            admission=self.admission,
            stream_admission=self.stream_admission,
        )

    # -- loading ------------------------------------------------------------

    def start(self) -> None:
        """Migrate, start the writers, then load everything (see the module's docstring)."""
        ensure_schema(self.db, self.db_url, self.settings.migrate)
        if self.history is not None:
            self.history.start()
        self.access_log.start()
        self.reload()

    def reload(self) -> bool:
        """Sync storage, re-read the manifest if it changed, then rescan plugins."""
        self.storage.sync()
        self._reload_manifest()
        self.sync_models()
        return self.manager.refresh()

    def _app_dir(self) -> Path:
        app = self.storage.app_dir
        return app if app.is_dir() else app.parent

    def _reload_manifest(self) -> None:
        """Re-read the manifest and the .env files when any of them changed,
        resolve secrets, and swap in new connection services."""
        app = self._app_dir()
        path = find_manifest(app)
        env_files = dotenv_files(app, self.settings.environment)
        secrets_file = self.settings.secrets_file
        read = [*env_files, secrets_file] if secrets_file is not None else env_files
        stamp = (file_stamp(path), tuple(file_stamp(f) for f in read))
        if stamp == self._manifest_stamp and self.aws_secrets is None:
            return  # with AWS secrets, values may rotate: re-resolve every refresh
        self._manifest_stamp = stamp
        try:
            manifest = load_manifest(path) if path is not None else EMPTY
        except ConfigError as exc:
            self.manifest_error = str(exc)
            log.error("manifest: %s; the previous manifest stays in effect", exc)
            manifest = self.manifest
        else:
            if path is not None:
                log.info("manifest %s %s", "reloaded" if self.manifest_path else "loaded", path)
            self.manifest, self.manifest_path, self.manifest_error = manifest, path, None
        files = load_dotenv_files(env_files)
        if secrets_file is not None:
            files = {**files, **load_secrets_file(secrets_file)}
        source = SecretSource(files, extra=self.secret_sources)
        self._secret_source = source
        resolved = resolve(manifest, source, self.settings.dgraph)
        if resolved == self.resolved and self._resolved_once:
            return
        self._resolved_once = True
        REDACTOR.set_secrets(resolved.secrets)
        for missing in resolved.missing:
            log.warning("secret %s", missing)
        self.services.replace(
            build_bundle(
                resolved,
                self.settings.model_host,
                self.record_inference,
                self.executors,
                app_secret=lambda name: source.lookup("app", name)[0],
            )
        )
        self.resolved = resolved
        self.manager.set_options(self._options())

    def sync_models(self) -> None:
        """Merge the manifest's models with the registry's and apply them."""
        self.catalog.sync(self.resolved.models, self._secret_source)
        self.services.current.models.models = self.catalog.models

    @property
    def models(self) -> dict[str, ModelSpec]:
        return self.catalog.models

    @property
    def model_sources(self) -> dict[str, str]:
        return self.catalog.sources

    def load_errors(self) -> dict[str, str]:
        errors = dict(self.manager.catalog.load_errors)
        if self.manifest_error:
            errors["manifest"] = self.manifest_error
        return errors

    # -- running ------------------------------------------------------------

    async def _reload_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.refresh)
            try:
                await asyncio.to_thread(self.reload)
            except Exception:  # never let the reloader die
                log.exception("reload failed")

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        reloader = None
        if not self.settings.noreload and self.settings.refresh > 0:
            reloader = asyncio.create_task(self._reload_forever(), name="modrun-reload")
        if self.agent is not None:
            self.agent.start()
        try:
            yield
        finally:
            if self.agent is not None:
                await asyncio.to_thread(self.agent.stop)
            if reloader is not None:
                reloader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reloader
            self.close()

    def close(self) -> None:
        """Stop workers, unload plugins, close connections (in that order)."""
        self.invoker.shutdown()
        self.plugin_records.close()
        if self.history is not None:
            self.history.close()
        self.access_log.close()
        self.manager.close()
        self.services.close()
        self.executors.close()
        self.db.dispose()
        gc.collect()

    def asgi(self) -> Any:
        from modrun.api.app import NodeApp

        app = NodeApp(self.parts(), lifespan=self.lifespan)
        if self.agent is None:
            return app
        from modrun.agent.bundles import BundleProxy
        from modrun.agent.guard import GuardedApp

        return GuardedApp(BundleProxy(app, self.agent.bundle), self.agent)

    def serve(self, sockets: list[Any] | None = None, loaded: Callable[[], None] | None = None) -> None:
        """Load the plugins and serve until SIGTERM, on ``--host``/``--port`` or,
        under ``--processes``, on the sockets the supervisor handed over (after
        ``loaded``, which returns when the supervisor lets the processes serve)."""
        from modrun.api.server import run_http

        self.start()
        if loaded is not None:
            loaded()
        catalog = self.manager.catalog
        log.info(
            "serving %d functions from %d plugins in %s on http://%s:%d (%s; reload %s)",
            len(catalog.by_key),
            len(catalog.plugins),
            self.settings.plugins,
            self.settings.host,
            self.settings.port,
            self.settings.limits.describe(),
            "off" if self.settings.noreload else f"every {self.settings.refresh:g}s",
        )
        run_http(
            self.asgi(),
            self.settings.host,
            self.settings.port,
            self.settings.proxy_headers,
            grace=self.settings.timeout + 1,  # a call accepted before SIGTERM may take its whole --timeout
            sockets=sockets,
            drain=DRAIN if self.settings.slot is not None else 0.0,
        )


def _plugin_level(level: str) -> str:
    level = level.lower()
    return {"warning": "warn", "critical": "error"}.get(level, level if level in LEVELS else "info")
