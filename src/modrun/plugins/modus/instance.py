"""Calls of a Modus plugin: a fresh wasmtime instance per call, as Modus
makes one, started with ``_initialize``.

The call's input is the JSON object of its parameters (what REST and GraphQL
hand every typed function); each parameter is written into guest memory with
the plugin's own ``__new`` (pinned until the call ends), omitted optional ones
are left to the guest through ``__setArgumentsLength``, and the result is
read back and answered as text (String), bytes (ArrayBuffer, Uint8Array) or
JSON. Host functions the plugin imports are bound from the metadata's
``fnImports``: their arguments are decoded and their results encoded with the
same codec, so each implementation sees plain Python values.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from wasmtime import (
    ExitTrap,
    Func,
    FuncType,
    Instance,
    Linker,
    Memory,
    Store,
    Trap,
    TrapCode,
    ValType,
    WasiConfig,
    WasmtimeError,
)

from modrun.errors import CallTimeout, GuestError, HostFunctionError, MemoryLimitExceeded
from modrun.errors import Trap as TrapError
from modrun.plugins.modus.codec import Codec, CodecError
from modrun.plugins.modus.metadata import Metadata, ModusFunction, ModusParam
from modrun.plugins.modus.types import AsType, parse
from modrun.wasm.engine import WasmEngine
from modrun.wasm.host import CallState, LogLine
from modrun.wasm.instance import WASI_MODULE, InstanceEnv

HostImpl = Callable[["ModusCall", list[Any]], Any]
"""A host function: the call, its decoded arguments -> its result (Python)."""

_VALTYPES = {"i64": ValType.i64, "u64": ValType.i64, "f32": ValType.f32, "f64": ValType.f64}


def _valtype(t: AsType) -> ValType:
    if t.kind == "primitive":
        return _VALTYPES.get(t.name, ValType.i32)()
    return ValType.i32()


class _GuestMemory:
    """The codec's view of one instance: reads, writes and ``__new`` + ``__pin``."""

    def __init__(self, store: Store, memory: Memory, new: Func, pin: Func) -> None:
        self.store, self.memory, self._new, self._pin = store, memory, new, pin
        self.pinned: list[int] = []

    def read(self, address: int, length: int) -> bytes:
        if address < 0 or length < 0 or address + length > self.memory.data_len(self.store):
            raise CodecError(f"guest memory range {address}+{length} out of bounds")
        return bytes(self.memory.read(self.store, address, address + length))

    def write(self, address: int, data: bytes) -> None:
        self.memory.write(self.store, data, address)

    def new(self, size: int, class_id: int) -> int:
        ptr = self._new(self.store, size, class_id) & 0xFFFFFFFF
        if ptr == 0:
            raise MemoryLimitExceeded(f"the plugin could not allocate {size} bytes")
        self._pin(self.store, ptr)
        self.pinned.append(ptr)
        return ptr


class ModusCall:
    """What a host function sees of the running call."""

    def __init__(self, caller: ModusCaller, state: CallState) -> None:
        self.plugin_name = caller.env.plugin_name
        self.services = caller.env.services
        self.build_id = caller.env.build_id
        self.state = state
        self.codec: Codec | None = None

    def log(self, level: str, message: str) -> None:
        self.state.log(LogLine(_LEVELS.get(level, "info"), message))


_LEVELS = {
    "debug": "debug",
    "info": "info",
    "warning": "warn",
    "warn": "warn",
    "error": "error",
    "fatal": "error",
}


class ModusCaller:
    """Runs the calls of one Modus plugin version (the pool's "instance":
    each call makes its own wasm instance, so nothing is kept between calls)."""

    def __init__(
        self,
        engine: WasmEngine,
        env: InstanceEnv,
        metadata: Metadata,
        host: Mapping[str, HostImpl],
        output: Mapping[str, str],
    ) -> None:
        self.engine = engine
        self.env = env
        self.metadata = metadata
        self.host = host
        self.output = output  # function -> "text" | "bytes" | "json" | "none" (its signature's)
        self.broken = False
        self.calls = 0
        self._imports = [(imp.module, imp.name or "") for imp in env.module.imports]

    def memory_bytes(self) -> int:
        return 0  # nothing outlives a call

    def close(self) -> None:
        pass

    def call(self, export: str, data: bytes, state: CallState, deadline_ticks: int) -> bytes:
        fn = self.metadata.exports[export]
        try:
            args = json.loads(data) if data.strip() else {}
        except ValueError as exc:
            raise GuestError(f"the input is not JSON: {exc}") from None
        if not isinstance(args, dict):
            raise GuestError("the input must be a JSON object of the parameters")
        unknown = sorted(set(args) - {p.name for p in fn.params})
        if unknown:
            raise GuestError(f"unknown parameter {unknown[0]!r}")
        self.calls += 1
        call = ModusCall(self, state)
        store = Store(self.engine.engine)
        store.set_limits(memory_size=self.env.limits.max_memory)
        store.set_epoch_deadline(deadline_ticks)
        try:
            instance = self._instantiate(store, call)
            return self._run(store, instance, call, fn, args)
        except (ExitTrap, Trap, WasmtimeError) as exc:
            raise self._failure(exc, call) from None
        except CodecError as exc:
            raise GuestError(str(exc)) from None

    def _instantiate(self, store: Store, call: ModusCall) -> Instance:
        linker = Linker(self.engine.engine)
        if self.env.uses_wasi:
            linker.define_wasi()
            config = WasiConfig()
            config.env = [("TZ", "UTC")]
            store.set_wasi(config)
        for module, name in self._imports:
            if module == WASI_MODULE:
                continue
            key = f"{module}.{name}"
            linker.define(store, module, name, self._host_func(store, key, call))
        instance = linker.instantiate(store, self.env.module)
        exports = instance.exports(store)
        memory, new, pin = exports.get("memory"), exports.get("__new"), exports.get("__pin")
        if not isinstance(memory, Memory) or not isinstance(new, Func) or not isinstance(pin, Func):
            raise GuestError(
                "a Modus plugin must export memory, __new and __pin (build with --exportRuntime)"
            )
        call.codec = Codec(_GuestMemory(store, memory, new, pin), self.metadata.classes)
        initialize = exports.get("_initialize")
        if isinstance(initialize, Func):
            initialize(store)
        return instance

    def _run(self, store: Store, instance: Instance, call: ModusCall, fn: ModusFunction, args: dict) -> bytes:
        codec = call.codec
        assert codec is not None
        exports = instance.exports(store)
        given = len(fn.params)
        while given > fn.required and fn.params[given - 1].name not in args:
            given -= 1
        values = []
        for i, p in enumerate(fn.params):
            if i < given:
                value = args.get(p.name, p.default if p.has_default else None)
                values.append(codec.write(p.type, value, p.name))
            else:  # left to the guest's default
                values.append(0.0 if p.type.name in ("f32", "f64") else 0)
        if len(fn.params) > fn.required:
            set_length = exports.get("__setArgumentsLength")
            if isinstance(set_length, Func):
                set_length(store, given)
        func = exports.get(fn.name)
        if not isinstance(func, Func):
            raise GuestError(f"the plugin does not export {fn.name}")
        raw = func(store, *values)
        result = None if fn.result.kind == "void" else codec.read(fn.result, raw)
        memory = codec.memory
        unpin = exports.get("__unpin")
        if isinstance(unpin, Func) and isinstance(memory, _GuestMemory):
            for ptr in memory.pinned:
                unpin(store, ptr)
        return _answer(result, self.output.get(fn.name, "json"))

    def _host_func(self, store: Store, key: str, call: ModusCall) -> Func:
        spec = ABORT if key == "env.abort" else self.metadata.imports.get(key)
        impl = self.host.get(key)
        if spec is None or impl is None:  # checked at load; kept for a clear trap if not
            raise GuestError(f"the plugin imports {key}, which modrun does not provide")
        ty = FuncType(
            [_valtype(p.type) for p in spec.params],
            [] if spec.result.kind == "void" else [_valtype(spec.result)],
        )

        def run(*raw: Any) -> Any:
            codec = call.codec
            if codec is None:
                raise HostFunctionError(f"{key} called before the plugin started")
            try:
                args = [
                    codec.read(p.type, v, f"{key}({p.name})") for p, v in zip(spec.params, raw, strict=True)
                ]
                value = impl(call, args)
                return (
                    None if spec.result.kind == "void" else codec.write(spec.result, value, f"{key} result")
                )
            except BaseException as exc:
                call.state.pending = exc
                raise

        return Func(store, ty, run)

    def _failure(self, exc: BaseException, call: ModusCall) -> BaseException:
        pending, call.state.pending = call.state.pending, None
        if pending is not None and not isinstance(pending, CodecError):
            if isinstance(pending, GuestError | HostFunctionError | MemoryLimitExceeded):
                return pending
            return HostFunctionError(f"host function failed: {pending}")
        if isinstance(exc, Trap) and exc.trap_code == TrapCode.INTERRUPT:
            return CallTimeout("function exceeded its time limit and was stopped")
        fatal = [line.message for line in call.state.logs or () if line.level == "error"]
        if isinstance(exc, ExitTrap):
            return GuestError(fatal[-1] if fatal else f"the plugin exited with code {exc.code}")
        if isinstance(pending, CodecError):
            return GuestError(str(pending))
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "abort:" in str(exc):
            return GuestError(str(exc)[str(exc).index("abort:") :].splitlines()[0])
        return TrapError(f"wasm trap: {message.removeprefix('wasm trap: ')}")


def _answer(result: Any, output: str) -> bytes:
    if output == "none":
        return b""
    if output == "text":
        return b"" if result is None else str(result).encode()
    if output == "bytes":
        return b"" if result is None else base64.b64decode(result)
    return json.dumps(result, separators=(",", ":")).encode()


ABORT = ModusFunction(
    "env.abort",
    tuple(
        ModusParam(n, parse(t))
        for n, t in (
            ("message", "~lib/string/String | null"),
            ("file", "~lib/string/String | null"),
            ("line", "u32"),
            ("column", "u32"),
        )
    ),
    parse("void"),
)
"""AssemblyScript's own import (plugins built without Modus's abort override)."""


def abort(call: ModusCall, args: list[Any]) -> None:
    """``env.abort``: a thrown error, as the guest's message and where."""
    message, file, line, column = args
    raise GuestError(f"abort: {message or ''} ({file or '?'}:{line}:{column})")
