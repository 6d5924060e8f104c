"""A runtime node: the one place its parts are created, started and stopped.

Start order: logging -> wasm engine (epoch ticker, module cache) -> manifest ->
plugins (first scan) -> invoker (worker threads) -> HTTP server -> reloader.
Stop order is the reverse; calls in flight finish before the workers go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from modrun.config.settings import ServeSettings
from modrun.errors import ConfigError
from modrun.hostfns.base import LEVELS
from modrun.hostfns.registry import default_host_functions
from modrun.manifest.model import EMPTY, Manifest, find_manifest, load_manifest
from modrun.metrics import NodeMetrics
from modrun.plugins.invoker import Invoker
from modrun.plugins.manager import PluginManager
from modrun.plugins.plugin import PluginOptions
from modrun.wasm.engine import WasmEngine

log = logging.getLogger("modrun")


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
        self.host_functions = default_host_functions()
        self.manager = PluginManager(Path(settings.plugins), self.engine, self._options(), self.metrics)
        self.invoker = Invoker(self.engine, self.metrics, max_workers=settings.workers)

    def _options(self) -> PluginOptions:
        return PluginOptions(
            limits=self.settings.limits,
            host_functions=self.host_functions,
            log_level=LEVELS.index(_plugin_level(self.settings.log_level)),
            config=self.manifest.plugin_config,
        )

    # -- loading ------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the manifest if it changed, then rescan plugins."""
        self._reload_manifest()
        return self.manager.refresh()

    def _reload_manifest(self) -> None:
        path = find_manifest(Path(self.settings.plugins))
        stamp = _stat(path)
        if stamp == self._manifest_stamp:
            return
        self._manifest_stamp = stamp
        try:
            manifest = load_manifest(path) if path is not None else EMPTY
        except ConfigError as exc:
            self.manifest_error = str(exc)
            log.error("manifest: %s; the previous manifest stays in effect", exc)
            return
        if path is not None:
            log.info("manifest %s %s", "reloaded" if self.manifest_path else "loaded", path)
        self.manifest, self.manifest_path, self.manifest_error = manifest, path, None
        self.manager.set_options(self._options())

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
        try:
            yield
        finally:
            if reloader is not None:
                reloader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reloader
            self.invoker.shutdown()

    def asgi(self) -> Any:
        from modrun.api.app import NodeApp

        return NodeApp(self, lifespan=self.lifespan)

    def serve(self) -> None:
        import uvicorn

        self.reload()
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
        config = uvicorn.Config(
            self.asgi(),
            host=self.settings.host,
            port=self.settings.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=10,
            proxy_headers=self.settings.proxy_headers,
            server_header=False,
        )
        uvicorn.Server(config).run()


def _plugin_level(level: str) -> str:
    level = level.lower()
    return {"warning": "warn", "critical": "error"}.get(level, level if level in LEVELS else "info")


def _stat(path: Path | None) -> Any:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path), st.st_mtime_ns, st.st_size)
