"""Loading one plugin version: read, compile, check imports/exports, attach schema."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmtime import FuncType, ValType, WasmtimeError

from modrun.errors import PluginLoadError, SchemaError
from modrun.plugins import naming
from modrun.plugins.discovery import PluginSource
from modrun.plugins.modus import metadata as modus
from modrun.plugins.modus.hostfns import HOST_FUNCTIONS as MODUS_HOST_FUNCTIONS
from modrun.plugins.modus.instance import ModusCaller
from modrun.plugins.pool import RECYCLE_BYTES, InstancePool
from modrun.plugins.schema import EMPTY, SECTION_NAME, PluginSchema, Signature, parse_schema, plugin_meta
from modrun.plugins.wasmbin import MAGIC, custom_sections
from modrun.wasm.engine import WasmEngine
from modrun.wasm.host import HostFunction, VarStore
from modrun.wasm.instance import WASI_MODULE, InstanceEnv, PluginInstance
from modrun.wasm.kernel import ENV_MODULE
from modrun.wasm.limits import Limits

META_SECTION = "modrun.meta"

_ENTRY_POINTS = {"_start", "_initialize"}


@dataclass(frozen=True)
class Function:
    """One callable function of a loaded plugin."""

    name: str
    plugin: str
    signature: Signature
    field: str
    mutation: bool

    @property
    def key(self) -> tuple[str, str]:
        return (self.plugin, self.name)


@dataclass
class PluginOptions:
    """What the node decides for every plugin it loads."""

    limits: Limits = field(default_factory=Limits)
    host_functions: Mapping[tuple[str, str], HostFunction] = field(default_factory=dict)
    log_level: int = 2
    services: Any = None
    config: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    tenant_services: Any = None  # what a tenant's plugin gets instead of the node's connections and models


class Plugin:
    """A loaded plugin version and its pool of warm instances."""

    def __init__(
        self,
        source: PluginSource,
        wasm: bytes,
        engine: WasmEngine,
        options: PluginOptions,
        vars: VarStore | None = None,
    ) -> None:
        self.name = source.name
        self.source = source
        self.path = source.wasm
        self.size = len(wasm)
        self.sha256 = hashlib.sha256(wasm).hexdigest()
        self.loaded_at = time.time()
        self.warnings: list[str] = []

        if wasm[:4] != MAGIC:
            raise PluginLoadError(self.name, f"{self.path} is not a WebAssembly module")
        try:
            started = time.perf_counter()
            self.module, self.cached = engine.compile(wasm)
            self.compile_ms = (time.perf_counter() - started) * 1000
        except WasmtimeError as exc:
            raise PluginLoadError(self.name, f"cannot compile {self.path}: {_first_line(exc)}") from None

        try:
            sections = custom_sections(wasm)
        except ValueError as exc:
            raise PluginLoadError(self.name, f"malformed wasm: {exc}") from None
        # a plugin built with the Modus SDK says so in its metadata section
        self.modus = self._modus_metadata(sections)
        self.abi = "modus" if self.modus is not None else "extism"
        if self.modus is not None:
            self.uses_wasi = self._check_modus_imports()
            declared = set(self.modus.exports)
            exports = sorted(
                e.name for e in self.module.exports if isinstance(e.type, FuncType) and e.name in declared
            )
            try:
                self.schema = self.modus.schema()
            except ValueError as exc:  # MetadataError, or a type modrun cannot map (named)
                raise PluginLoadError(self.name, str(exc)) from None
        else:
            self.uses_wasi = self._check_imports(engine, options.host_functions)
            exports = self._function_exports()
            self.schema = self._load_schema(source, sections)
        self.meta = self._meta(sections)
        for missing in sorted(set(self.schema.functions) - set(exports)):
            self.warnings.append(f"schema describes {missing!r}, which the plugin does not export")
        self.functions = {
            name: Function(
                name=name,
                plugin=self.name,
                signature=self.schema.signature(name),
                field=naming.field_name(name),
                mutation=naming.is_mutation(name),
            )
            for name in exports
            if not naming.is_private(name)
        }
        self.env = InstanceEnv(
            plugin_name=self.name,
            module=self.module,
            exports=tuple(exports),
            host_functions=options.host_functions,
            limits=options.limits,
            config={} if source.tenant else dict(options.config.get(self.name, {})),
            vars=vars or VarStore(options.limits.max_var_bytes),
            log_level=options.log_level,
            services=options.tenant_services if source.tenant else options.services,
            uses_wasi=self.uses_wasi,
            build_id=self.sha256,
        )
        self._engine = engine
        self.timeout_ticks = engine.ticks(options.limits.timeout)
        self.timeout = options.limits.timeout
        # Instances that grew past half the memory limit are not reused, so a
        # memory found near the limit after a trap grew during that call.
        self.pool = InstancePool(
            self.new_instance, recycle_bytes=min(RECYCLE_BYTES, options.limits.max_memory // 2)
        )
        try:
            self.pool.prime(self.new_instance())
        except PluginLoadError:
            raise
        except Exception as exc:
            raise PluginLoadError(self.name, f"cannot instantiate: {_first_line(exc)}") from None

    @property
    def vars(self) -> VarStore:
        return self.env.vars

    def new_instance(self) -> PluginInstance | ModusCaller:
        if self.modus is not None:
            outputs = {name: fn.signature.output for name, fn in self.functions.items()}
            return ModusCaller(self._engine, self.env, self.modus, MODUS_HOST_FUNCTIONS, outputs)
        return PluginInstance(self._engine, self.env)

    def _modus_metadata(self, sections: Mapping[str, bytes]) -> modus.Metadata | None:
        section = sections.get(modus.SECTION)
        if section is None:
            return None
        try:
            return modus.parse_metadata(section, sections.get(modus.VERSION_SECTION))
        except modus.MetadataError as exc:
            raise PluginLoadError(self.name, str(exc)) from None

    def _check_modus_imports(self) -> bool:
        unknown, uses_wasi = [], False
        for imp in self.module.imports:
            if imp.module == WASI_MODULE:
                uses_wasi = True
            elif f"{imp.module}.{imp.name}" not in MODUS_HOST_FUNCTIONS:
                unknown.append(f"{imp.module}.{imp.name}")
        if unknown:
            raise PluginLoadError(
                self.name,
                "imports Modus host functions modrun does not provide yet: " + ", ".join(sorted(unknown)),
            )
        return uses_wasi

    def _check_imports(self, engine: WasmEngine, host: Mapping[tuple[str, str], HostFunction]) -> bool:
        unknown, uses_wasi = [], False
        for imp in self.module.imports:
            key = (imp.module, imp.name or "")
            if imp.module == WASI_MODULE:
                uses_wasi = True
            elif imp.module == ENV_MODULE and imp.name in engine.kernel_exports:
                continue
            elif key not in host:
                unknown.append(f"{imp.module}.{imp.name}")
        if unknown:
            raise PluginLoadError(
                self.name, "imports host functions modrun does not provide: " + ", ".join(sorted(unknown))
            )
        return uses_wasi

    def _function_exports(self) -> list[str]:
        names = []
        for exp in self.module.exports:
            ty = exp.type
            if not isinstance(ty, FuncType) or exp.name in _ENTRY_POINTS:
                continue
            if ty.params == [] and [str(r) for r in ty.results] == [str(ValType.i32())]:
                names.append(exp.name)
        return sorted(names)

    def _load_schema(self, source: PluginSource, sections: Mapping[str, bytes]) -> PluginSchema:
        if source.schema is not None:
            try:
                return parse_schema(source.schema.read_bytes(), self.name)
            except OSError as exc:
                raise SchemaError(self.name, f"cannot read {source.schema}: {exc}") from None
        section = sections.get(SECTION_NAME)
        return parse_schema(section, self.name) if section is not None else EMPTY

    def _meta(self, sections: Mapping[str, bytes]) -> dict[str, str]:
        """Version, language, SDK, build and git facts: the ``modrun.meta`` custom
        section (JSON) when there is one, over the schema's ``meta``."""
        meta = dict(self.schema.meta)
        section = sections.get(META_SECTION)
        if section is not None:
            try:
                meta.update(plugin_meta(json.loads(section)))
            except ValueError:
                self.warnings.append(f"the {META_SECTION} custom section is not JSON; ignored")
        return meta

    def describe(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "loadedAt": self.loaded_at,
            "functions": sorted(self.functions),
            "wasi": self.uses_wasi,
            "abi": self.abi,
            "warnings": self.warnings,
        }


def load_plugin(
    source: PluginSource, engine: WasmEngine, options: PluginOptions, vars: VarStore | None = None
) -> Plugin:
    try:
        wasm = Path(source.wasm).read_bytes()
    except OSError as exc:
        raise PluginLoadError(source.name, f"cannot read {source.wasm}: {exc.strerror}") from None
    return Plugin(source, wasm, engine, options, vars)


def _first_line(exc: BaseException) -> str:
    """wasmtime's headline plus its root cause, without backtraces."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    cause = lines[-1].removeprefix("0: ")
    return lines[0] if cause == lines[0] or "Caused by:" not in lines else f"{lines[0]}: {cause}"
