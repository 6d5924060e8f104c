"""Keeps the catalog in step with the plugins directory (hot reload).

``refresh()`` rescans the directory and swaps in a new ``Catalog`` when
anything changed. A plugin whose file and config are unchanged keeps its
loaded version (and warm instances). A replacement that fails to load is
reported while the previous version keeps serving; the broken file is not
retried until it changes again. Calls in flight hold their own plugin
reference, so a swap never fails them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from modrun.errors import PluginLoadError
from modrun.metrics.node import NodeMetrics
from modrun.plugins.catalog import Catalog
from modrun.plugins.discovery import PluginSource, discover
from modrun.plugins.plugin import Plugin, PluginOptions, load_plugin
from modrun.wasm.engine import WasmEngine

log = logging.getLogger("modrun.plugins")


class PluginManager:
    def __init__(
        self, path: Path, engine: WasmEngine, options: PluginOptions, metrics: NodeMetrics | None = None
    ) -> None:
        self.path = path
        self.engine = engine
        self.options = options
        self.metrics = metrics
        self.catalog = Catalog({}, {})
        self._stamps: dict[str, tuple] = {}
        self._failed: dict[str, tuple[tuple, str]] = {}
        self._extra: dict[str, PluginSource] = {}
        # told of every plugin version a refresh loaded (the node records them: plugins/records.py)
        self.on_loaded: list[Callable[[list[Plugin]], None]] = []
        self._lock = threading.Lock()

    def set_extra(self, name: str, source: PluginSource | None) -> None:
        """Serve a plugin that is not in the plugins directory (a module the
        orchestrator placed here), or stop serving it (None). Applied by the
        next refresh; a directory plugin of the same name keeps its name."""
        with self._lock:
            if source is None:
                self._extra.pop(name, None)
            else:
                self._extra[name] = source

    def names(self) -> set[str]:
        """Names of the plugins in the directory and the extra ones."""
        return set(self.catalog.plugins) | set(self._extra)

    def set_options(self, options: PluginOptions) -> None:
        """New node-wide options (e.g. a reloaded manifest); applied by the next
        refresh to every plugin whose effective options changed."""
        self.options = options

    def _stamp(self, source: PluginSource) -> tuple:
        config: Mapping[str, str] = self.options.config.get(source.name, {})
        return (
            source.fingerprint(),
            tuple(sorted(config.items())),
            id(self.options.services),
            source.limits or self.options.limits,
            self.options.log_level,
        )

    def close(self) -> None:
        """Unload everything. Stores hold callbacks into Python (WASI output),
        so they must be freed while the interpreter is fully alive."""
        with self._lock:
            catalog, self.catalog = self.catalog, Catalog({}, {})
        for plugin in catalog.plugins.values():
            plugin.pool.clear()

    def refresh(self) -> bool:
        """Rescan; returns True when the catalog changed."""
        with self._lock:
            before = self.catalog.plugins
            changed = self._refresh()
        loaded = [p for name, p in self.catalog.plugins.items() if before.get(name) is not p]
        for listener in self.on_loaded if loaded else ():
            try:
                listener(loaded)
            except Exception:  # a listener must not stop a reload
                log.exception("plugin load listener failed")
        return changed

    def _refresh(self) -> bool:
        current = self.catalog
        sources, problems = discover(self.path)
        taken = {s.name for s in sources}
        for name, source in sorted(self._extra.items()):
            if name in taken:
                problems[name] = f"module plugin {name!r} not served: a plugin in the directory has that name"
            else:
                sources.append(source)
        plugins: dict[str, Plugin] = {}
        errors: dict[str, str] = dict(problems)
        changed = False
        for source in sources:
            stamp = self._stamp(source)
            old = current.plugins.get(source.name)
            if old is not None and self._stamps.get(source.name) == stamp:
                plugins[source.name] = old
                continue
            failed = self._failed.get(source.name)
            if failed is not None and failed[0] == stamp:
                errors[source.name] = failed[1]
                if old is not None:
                    plugins[source.name] = old
                continue
            try:
                options = replace(self.options, limits=source.limits) if source.limits else self.options
                plugin = load_plugin(source, self.engine, options)
            except PluginLoadError as exc:
                self._failed[source.name] = (stamp, exc.reason)
                errors[source.name] = exc.reason
                if old is not None:
                    plugins[source.name] = old
                    log.error("plugin %s: %s; the previous version keeps serving", source.name, exc.reason)
                else:
                    log.error("plugin %s: %s", source.name, exc.reason)
                changed = True
                continue
            self._failed.pop(source.name, None)
            self._stamps[source.name] = stamp
            plugins[source.name] = plugin
            changed = True
            verb = "reloaded" if old is not None else "loaded"
            log.info(
                "%s plugin %s from %s: %d functions (%s, %.1f ms)",
                verb,
                plugin.name,
                plugin.path,
                len(plugin.functions),
                "compile cache" if plugin.cached else "compiled",
                plugin.compile_ms,
            )
            for warning in plugin.warnings:
                log.warning("plugin %s: %s", plugin.name, warning)
        for gone in set(current.plugins) - set(plugins):
            log.info("unloaded plugin %s (its file is gone)", gone)
            self._stamps.pop(gone, None)
            changed = True
        for gone in set(self._failed) - {s.name for s in sources}:
            del self._failed[gone]
        if not changed and errors == current.load_errors:
            return False
        catalog = Catalog(plugins, errors, current.generation + 1)
        for conflict in catalog.conflicts:
            if not any(c == conflict for c in current.conflicts):
                log.warning("name clash: %s", conflict.message)
        for skipped in set(catalog.skipped) - set(current.skipped):
            log.warning("not in the GraphQL schema: %s (still callable over REST)", skipped)
        self.catalog = catalog
        if self.metrics is not None:
            self.metrics.plugins_loaded.set(len(catalog.plugins))
            self.metrics.load_errors.set(len(catalog.load_errors))
            self.metrics.reloads.inc()
        return True
