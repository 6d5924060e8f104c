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
import ctypes
import json
import struct
from collections.abc import Callable, Mapping
from typing import Any

from wasmtime import (
    FuncType,
    Linker,
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
from modrun.wasm import ffi
from modrun.wasm.engine import WasmEngine
from modrun.wasm.host import CallState, LogLine, MustRunOnThread
from modrun.wasm.instance import WASI_MODULE, InlineBudgetExceeded, InstanceEnv

HostImpl = Callable[["ModusCall", list[Any]], Any]
"""A host function: the call, its decoded arguments -> its result (Python)."""

PURE = frozenset(
    {"env.abort", "modus_system.logMessage", "modus_system.getTimeInZone", "modus_models.getModelInfo"}
)
"""Host functions that never block nor reach outside: the rest (HTTP, models,
databases, secrets) may, so a call speculatively run inline on the event loop
that reaches one is re-run on a thread (plugins/invoker.py)."""

_VALTYPES = {"i64": ValType.i64, "u64": ValType.i64, "f32": ValType.f32, "f64": ValType.f64}


def _valtype(t: AsType) -> ValType:
    if t.kind == "primitive":
        return _VALTYPES.get(t.name, ValType.i32)()
    return ValType.i32()


class _Raw:
    """Calls into one store through the C API's unchecked entry point
    (wasmtime-py's ``Func.__call__`` costs tens of microseconds a call)."""

    def __init__(self, store: Store) -> None:
        self.ctx = ffi.context_address(store)
        self.args = (ffi.ValRaw * 16)()
        self.addr = ctypes.addressof(self.args)
        self.trap = ctypes.c_void_p()
        self.epoch = 0  # moves whenever guest code may have run (and grown its memory)

    def call(self, func: int, values: list[tuple[str, Any]]) -> ffi.ValRaw:
        self.epoch += 1
        try:
            return self._call(func, values)
        finally:
            self.epoch += 1

    def _call(self, func: int, values: list[tuple[str, Any]]) -> ffi.ValRaw:
        args = self.args
        if len(values) > len(args):
            raise GuestError(f"a call with {len(values)} arguments (modrun passes at most {len(args)})")
        for i, (kind, value) in enumerate(values):
            if kind == "f32":
                args[i].i32 = _F32_BITS.unpack(_F32.pack(value))[0]
            elif kind == "f64":
                args[i].i64 = _F64_BITS.unpack(_F64.pack(value))[0]
            elif kind == "i64":
                args[i].i64 = value
            else:
                args[i].i32 = value
        error = ffi.call_unchecked(self.ctx, func, self.addr, len(args), ctypes.addressof(self.trap))
        if error:
            raise _Failed(ffi.error_message(error), None)
        trap = ffi.take_trap(self.trap)
        if trap is not None:
            raise _Failed(trap.message, trap)
        return args[0]


class _Failed(Exception):
    """A call that trapped or errored (its message, and the trap if one)."""

    def __init__(self, message: str, trap: Trap | None) -> None:
        super().__init__(message)
        self.trap = trap


_F32, _F32_BITS = struct.Struct("<f"), struct.Struct("<i")
_F64, _F64_BITS = struct.Struct("<d"), struct.Struct("<q")


def _kind(t: AsType) -> str:
    if t.kind == "primitive":
        return {"i64": "i64", "u64": "i64", "f32": "f32", "f64": "f64"}.get(t.name, "i32")
    return "i32"


def _value(raw: ffi.ValRaw, kind: str) -> Any:
    if kind == "f32":
        return _F32.unpack(_F32_BITS.pack(raw.i32))[0]
    if kind == "f64":
        return _F64.unpack(_F64_BITS.pack(raw.i64))[0]
    return raw.i64 if kind == "i64" else raw.i32


class _GuestMemory:
    """The codec's view of one instance: reads, writes and ``__new`` + ``__pin``."""

    def __init__(self, raw: _Raw, memory: int, new: int, pin: int) -> None:
        self.raw, self._mem, self._new, self._pin = raw, memory, new, pin
        self.pinned: list[int] = []
        self._seen = -1  # the raw epoch of (base, size) below
        self._base = self._size = 0

    def _bounds(self) -> tuple[int, int]:
        """The memory's address and size, looked up again once guest code may
        have grown it (two C calls saved on each of a call's many reads)."""
        if self._seen != self.raw.epoch:
            ctx = self.raw.ctx
            self._base, self._size = ffi.memory_data(ctx, self._mem), ffi.memory_data_size(ctx, self._mem)
            self._seen = self.raw.epoch
        return self._base, self._size

    def invalidate(self) -> None:
        self._seen = -1

    def read(self, address: int, length: int) -> bytes:
        base, size = self._bounds()
        if address < 0 or length < 0 or address + length > size:
            raise CodecError(f"guest memory range {address}+{length} out of bounds")
        return ctypes.string_at(base + address, length)

    def write(self, address: int, data: bytes) -> None:
        base, size = self._bounds()
        if address < 0 or address + len(data) > size:
            raise CodecError(f"guest memory range {address}+{len(data)} out of bounds")
        ctypes.memmove(base + address, data, len(data))

    def new(self, size: int, class_id: int) -> int:
        ptr = self.raw.call(self._new, [("i32", size), ("i32", class_id)]).i32 & 0xFFFFFFFF
        if ptr == 0:
            raise MemoryLimitExceeded(f"the plugin could not allocate {size} bytes")
        self.raw.call(self._pin, [("i32", ptr)])
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
    """Runs the calls of one Modus plugin version, one at a time (the pool's
    "instance"): its linker, with the host functions, is made once; each call
    makes its own store and wasm instance, so nothing is kept between calls."""

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
        self.output = output  # function -> "text" | "bytes" | "json" | "none" (its signature's)
        self.broken = False
        self.calls = 0
        self._call: ModusCall | None = None
        self._names = {
            name: ffi.ExportName(name)
            for name in (
                "memory",
                "__new",
                "__pin",
                "__unpin",
                "_initialize",
                "__setArgumentsLength",
                *metadata.exports,
            )
        }
        self._linker = Linker(engine.engine)
        if env.uses_wasi:
            self._linker.define_wasi()
        for key in dict.fromkeys(f"{imp.module}.{imp.name}" for imp in env.module.imports):  # once each
            module, _, name = key.partition(".")
            if module != WASI_MODULE:
                spec = ABORT if key == "env.abort" else metadata.imports.get(key)
                impl = host.get(key)
                if spec is None or impl is None:
                    raise GuestError(f"the plugin imports {key}, which modrun does not provide")
                self._linker.define_func(module, name, _functype(spec), self._host(key, spec, impl))

        self._pre = self._linker.instantiate_pre(env.module)  # linking resolved once

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
        call = self._call = ModusCall(self, state)
        store = Store(self.engine.engine)
        store.set_limits(memory_size=self.env.limits.max_memory)
        store.set_epoch_deadline(deadline_ticks)
        try:
            return self._run(store, call, fn, args)
        except (_Failed, Trap, WasmtimeError) as exc:
            raise self._failure(exc, call) from None
        except CodecError as exc:
            raise GuestError(str(exc)) from None
        finally:
            self._call = None

    def _run(self, store: Store, call: ModusCall, fn: ModusFunction, args: dict) -> bytes:
        if self.env.uses_wasi:
            config = WasiConfig()
            config.env = [("TZ", "UTC")]
            store.set_wasi(config)
        instance = self._pre.instantiate(store)
        raw = _Raw(store)
        held: list = []

        def export(name: str) -> int:
            return ffi.export_address(raw.ctx, instance, self._names[name], held)

        memory, new, pin = export("memory"), export("__new"), export("__pin")
        if not (memory and new and pin):
            raise GuestError("a Modus plugin exports memory, __new and __pin (asc --exportRuntime)")
        guest = _GuestMemory(raw, memory, new, pin)
        codec = call.codec = Codec(guest, self.metadata.classes)
        initialize = export("_initialize")
        if initialize:
            raw.call(initialize, [])
        given = len(fn.params)
        while given > fn.required and fn.params[given - 1].name not in args:
            given -= 1
        values: list[tuple[str, Any]] = []
        for i, p in enumerate(fn.params):
            kind = _kind(p.type)
            if i < given:
                value = args.get(p.name, p.default if p.has_default else None)
                values.append((kind, codec.write(p.type, value, p.name)))
            else:  # left to the guest's default
                values.append((kind, 0.0 if kind in ("f32", "f64") else 0))
        if len(fn.params) > fn.required:
            set_length = export("__setArgumentsLength")
            if set_length:
                raw.call(set_length, [("i32", given)])
        func = export(fn.name)
        if not func:
            raise GuestError(f"the plugin does not export {fn.name}")
        answer = raw.call(func, values)
        result = None if fn.result.kind == "void" else codec.read(fn.result, _value(answer, _kind(fn.result)))
        unpin = export("__unpin")
        if unpin:
            for ptr in guest.pinned:
                raw.call(unpin, [("i32", ptr)])
        return _answer(result, self.output.get(fn.name, "json"))

    def _host(self, key: str, spec: ModusFunction, impl: HostImpl) -> Callable[..., Any]:
        def run(*raw: Any) -> Any:
            call = self._call
            if call is None or call.codec is None:
                raise HostFunctionError(f"{key} called outside a call")
            memory = call.codec.memory
            if isinstance(memory, _GuestMemory):
                memory.invalidate()  # the guest ran since the host last looked
            if call.state.speculative and key not in PURE:
                call.state.pending = MustRunOnThread(key)
                raise call.state.pending
            try:
                args = [
                    call.codec.read(p.type, v, f"{key}({p.name})")
                    for p, v in zip(spec.params, raw, strict=True)
                ]
                value = impl(call, args)
                return (
                    None
                    if spec.result.kind == "void"
                    else call.codec.write(spec.result, value, f"{key} result")
                )
            except BaseException as exc:
                call.state.pending = exc
                raise

        return run

    def _failure(self, exc: BaseException, call: ModusCall) -> BaseException:
        pending, call.state.pending = call.state.pending, None
        if isinstance(pending, GuestError | HostFunctionError | MemoryLimitExceeded | MustRunOnThread):
            return pending
        if isinstance(pending, CodecError):
            return GuestError(str(pending))
        if pending is not None:
            return HostFunctionError(f"host function failed: {pending}")
        trap = exc.trap if isinstance(exc, _Failed) else exc if isinstance(exc, Trap) else None
        if trap is not None and trap.trap_code == TrapCode.INTERRUPT:
            if call.state.speculative:  # past the inline budget: the invoker runs it again on a thread
                return InlineBudgetExceeded()
            return CallTimeout("function exceeded its time limit and was stopped")
        text = str(exc).strip()
        if "exit status" in text:  # proc_exit: the SDK's abort logs a fatal line first
            fatal = [line.message for line in call.state.logs or () if line.level == "error"]
            return GuestError(fatal[-1] if fatal else text.splitlines()[0])
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if "Caused by:" in lines:
            lines = lines[lines.index("Caused by:") + 1 :]
        reason = (lines[-1] if lines else type(exc).__name__).removeprefix("wasm trap: ")
        if "memory" in reason and "limit" in reason:
            return MemoryLimitExceeded(f"function exceeded the memory limit ({reason})")
        return TrapError(f"wasm trap: {reason}")


def _functype(spec: ModusFunction) -> FuncType:
    results = [] if spec.result.kind == "void" else [_valtype(spec.result)]
    return FuncType([_valtype(p.type) for p in spec.params], results)


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
