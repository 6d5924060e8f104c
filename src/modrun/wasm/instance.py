"""One instantiated plugin: a wasmtime Store holding the Extism kernel and the guest.

A call is: reset the kernel and reserve the input (one kernel call), copy the
input in with one memmove, call the export, read the output words and bytes
straight out of kernel memory. Host functions the guest imports are bound to
this instance and see the running call through ``self.state``.

An instance serves one call at a time; ``modrun.plugins.pool`` hands instances
to calls. After a trap the instance is ``broken`` and must not be reused.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wasmtime import Func, FuncType, Linker, Memory, Module, Store, Trap, TrapCode, ValType, WasiConfig

from modrun.errors import CallFailed, CallTimeout, GuestError, HostFunctionError, MemoryLimitExceeded
from modrun.errors import Trap as TrapError
from modrun.wasm import ffi
from modrun.wasm import kernel as K
from modrun.wasm.capture import OutputCapture
from modrun.wasm.engine import WasmEngine
from modrun.wasm.host import CallState, HostFunction, MustRunOnThread, VarStore
from modrun.wasm.limits import Limits

WASI_MODULE = "wasi_snapshot_preview1"
_VALTYPES = {"i32": ValType.i32, "i64": ValType.i64}
_VAL_STRIDE = ctypes.sizeof(ffi.ValRaw)


def _trap_reason(message: str) -> str:
    """The cause line of a wasmtime trap message, without the backtrace."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if "Caused by:" in lines:
        lines = lines[lines.index("Caused by:") + 1 :]
    reason = lines[-1] if lines else message
    return reason.removeprefix("wasm trap: ")


class InlineBudgetExceeded(Exception):
    """A speculative inline call ran past its short budget; re-run it on a thread."""


@dataclass
class InstanceEnv:
    """What every instance of one plugin version shares."""

    plugin_name: str
    module: Module
    exports: tuple[str, ...]
    host_functions: Mapping[tuple[str, str], HostFunction]
    limits: Limits
    config: Mapping[str, str] = field(default_factory=dict)
    vars: VarStore = field(default_factory=lambda: VarStore(1 << 20))
    log_level: int = 2
    services: Any = None
    uses_wasi: bool = False
    build_id: str = ""


class PluginInstance:
    def __init__(self, engine: WasmEngine, env: InstanceEnv) -> None:
        self.env = env
        self.plugin_name = env.plugin_name
        self.config = env.config
        self.vars = env.vars
        self.log_level = env.log_level
        self.services = env.services
        self.build_id = env.build_id
        self.state = CallState(function="_initialize")
        self.broken = False
        self.calls = 0

        store = Store(engine.engine)
        store.set_limits(memory_size=env.limits.max_memory)
        store.set_epoch_deadline(engine.ticks(env.limits.timeout))
        self._store = store
        self._ctx = ffi.context_address(store)
        self._max_memory = env.limits.max_memory

        linker = Linker(engine.engine)
        kernel = linker.instantiate(store, engine.kernel)
        linker.define_instance(store, K.ENV_MODULE, kernel)
        kernel_exports = kernel.exports(store)
        self._kernel_memory: Memory = kernel_exports["memory"]  # type: ignore[assignment]
        self._kmem = ffi.memory_address(self._kernel_memory)
        begin, alloc = kernel_exports["modrun_begin"], kernel_exports["alloc"]
        assert isinstance(begin, Func) and isinstance(alloc, Func)  # the kernel's own exports
        self._keep = [begin, alloc]
        self._begin = ffi.func_address(begin)
        self._alloc = ffi.func_address(alloc)

        wanted = {(imp.module, imp.name) for imp in env.module.imports}
        for key, hf in env.host_functions.items():
            if key in wanted:
                ty = FuncType([_VALTYPES[p]() for p in hf.params], [_VALTYPES[r]() for r in hf.results])
                linker.define(store, hf.module, hf.name, ffi.host_func(store, ty, self._bind(hf)))
        self._capture: OutputCapture | None = None
        if env.uses_wasi:
            linker.define_wasi()
            self._capture = OutputCapture()
            store.set_wasi(self._wasi_config(self._capture))

        # Buffers for the hot path, allocated once: arguments/results of the
        # call being made, and of calls host functions make into the kernel.
        self._args = (ffi.ValRaw * 2)()
        self._args_addr = ctypes.addressof(self._args)
        self._trap = ctypes.c_void_p()
        self._host_args = (ffi.ValRaw * 2)()
        self._host_args_addr = ctypes.addressof(self._host_args)
        self._host_trap = ctypes.c_void_p()

        try:
            instance = linker.instantiate(store, env.module)
        except Trap as trap:
            raise self._classify(trap) from None
        guest_exports = instance.exports(store)
        self._guest_memory = guest_exports.get("memory")
        self._guest_mem = (
            ffi.memory_address(self._guest_memory) if isinstance(self._guest_memory, Memory) else None
        )
        self._funcs = {name: _func(guest_exports[name]) for name in env.exports}
        self._func_addrs = {name: ffi.func_address(f) for name, f in self._funcs.items()}
        initialize = guest_exports.get("_initialize")
        if initialize is not None:
            try:
                initialize(store)  # type: ignore[operator]
            except Trap as trap:
                raise self._classify(trap) from None

    # -- the call ---------------------------------------------------------

    def call(self, export: str, data: bytes, state: CallState, deadline_ticks: int) -> bytes:
        """Run ``export`` on ``data``; raises a ``CallFailed`` subclass on failure."""
        if self._capture is None:
            return self._call(export, data, state, deadline_ticks)
        try:
            return self._call(export, data, state, deadline_ticks)
        finally:
            self._collect_output()

    def _call(self, export: str, data: bytes, state: CallState, deadline_ticks: int) -> bytes:
        func = self._func_addrs[export]
        self.state = state
        self.calls += 1
        ctx = self._ctx
        args = self._args
        ffi.set_epoch_deadline(ctx, deadline_ticks)
        size = len(data)
        args[0].i64 = size
        self._invoke(self._begin)
        offset = args[0].i64
        if offset < 0:
            raise MemoryLimitExceeded(
                f"input of {size} bytes does not fit under the memory limit of {self._max_memory} bytes"
            )
        if size:
            ctypes.memmove(ffi.memory_data(ctx, self._kmem) + offset, data, size)
        self._invoke(func)
        rc = args[0].i32
        base = ffi.memory_data(ctx, self._kmem)
        if rc != 0:
            handle = ffi.read_i64(base + K.ERROR_HANDLE)
            message = self.read(handle).decode("utf-8", "replace") if handle else ""
            raise GuestError(message or f"function returned error code {rc}")
        out_at, out_len = ffi.read_pair(base + K.OUTPUT_OFFSET)
        if not out_len:
            return b""
        if out_at < 0 or out_len < 0 or out_at + out_len > ffi.memory_data_size(ctx, self._kmem):
            raise GuestError(f"output_set({out_at}, {out_len}) points outside kernel memory")
        return ctypes.string_at(base + out_at, out_len)

    def _invoke(self, func: int, args: int | None = None, trap_holder: ctypes.c_void_p | None = None) -> None:
        """Call ``func`` with the raw values at ``args`` (default: the call
        buffer); raise the classified failure if it errors or traps."""
        holder = self._trap if trap_holder is None else trap_holder
        error = ffi.call_unchecked(
            self._ctx, func, self._args_addr if args is None else args, 2, ctypes.addressof(holder)
        )
        if error:
            raise self._failure(ffi.error_message(error), interrupted=False)
        if holder.value:
            trap = ffi.take_trap(holder)
            assert trap is not None
            raise self._classify(trap)

    def _classify(self, trap: Trap) -> BaseException:
        return self._failure(trap.message, interrupted=trap.trap_code == TrapCode.INTERRUPT)

    def _failure(self, message: str, interrupted: bool) -> BaseException:
        """The error the caller should see for a call that trapped or errored.
        A host function's own exception (kept in ``state.pending``) wins."""
        self.broken = True
        pending, self.state.pending = self.state.pending, None
        if isinstance(pending, (CallFailed, MustRunOnThread, InlineBudgetExceeded)):
            return pending
        if pending is not None:
            return HostFunctionError(f"host function failed: {pending}")
        if interrupted:
            if self.state.speculative:
                return InlineBudgetExceeded()
            return CallTimeout("function exceeded its time limit and was stopped")
        reason = _trap_reason(message)
        if self._near_memory_limit():
            return MemoryLimitExceeded(
                f"function exceeded the memory limit of {self._max_memory} bytes ({reason})"
            )
        reported = self._reported_error()
        if reported:
            return GuestError(reported)
        return TrapError(f"wasm trap: {reason}")

    def _reported_error(self) -> str:
        """The Extism error the guest set before trapping (e.g. in an abort handler)."""
        try:
            handle = ffi.read_i64(ffi.memory_data(self._ctx, self._kmem) + K.ERROR_HANDLE)
            return self.read(handle).decode("utf-8", "replace") if handle else ""
        except CallFailed:
            return ""

    def _near_memory_limit(self) -> bool:
        """True when a memory is so close to the limit that the trap most likely
        followed a refused ``memory.grow`` (wasmtime reports a refused grow to
        the guest as -1, not as a trap, so the cause has to be inferred)."""
        margin = max(1 << 20, self._max_memory // 16)
        memories = [self._kmem]
        guest = getattr(self, "_guest_mem", None)
        if guest is not None:
            memories.append(guest)
        return any(ffi.memory_data_size(self._ctx, m) + margin > self._max_memory for m in memories)

    # -- what host functions see -----------------------------------------

    def read(self, handle: int) -> bytes:
        """Bytes of the kernel block ``handle``."""
        if handle == 0:
            return b""
        ctx = self._ctx
        base = ffi.memory_data(ctx, self._kmem)
        size = ffi.memory_data_size(ctx, self._kmem)
        if handle < K.FIRST_HANDLE or handle >= size:
            raise HostFunctionError(f"invalid memory handle {handle}")
        if ffi.read_i64(base + handle + K.BLOCK_CAPACITY) & 1:
            raise HostFunctionError(f"memory handle {handle} was freed")
        length = ffi.read_i64(base + handle + K.BLOCK_LENGTH)
        if length < 0 or handle + length > size:
            raise HostFunctionError(f"invalid memory handle {handle}")
        return ctypes.string_at(base + handle, length)

    def write(self, data: bytes) -> int:
        """Copy ``data`` into a new kernel block; returns its handle."""
        if not data:
            return 0
        args = self._host_args
        args[0].i64 = len(data)
        self._invoke(self._alloc, self._host_args_addr, self._host_trap)
        handle = args[0].i64
        if handle == 0:
            raise MemoryLimitExceeded(f"kernel memory cannot hold {len(data)} more bytes")
        ctypes.memmove(ffi.memory_data(self._ctx, self._kmem) + handle, data, len(data))
        return handle

    def read_guest(self, address: int, length: int) -> bytes:
        memory = self._guest_memory
        if not isinstance(memory, Memory):
            raise HostFunctionError("plugin exports no memory")
        if address < 0 or length < 0 or address + length > memory.data_len(self._store):
            raise HostFunctionError(f"guest memory range {address}+{length} out of bounds")
        return ctypes.string_at(ffi.memory_data(self._ctx, self._guest_mem) + address, length)

    def memory_bytes(self) -> int:
        """Bytes of linear memory this instance holds (kernel + guest)."""
        total = ffi.memory_data_size(self._ctx, self._kmem)
        if self._guest_mem is not None:
            total += ffi.memory_data_size(self._ctx, self._guest_mem)
        return total

    # -- wiring -----------------------------------------------------------

    def _bind(self, hf: HostFunction) -> ffi.HostCallback:
        impl = hf.impl
        kinds = hf.params
        result = hf.results[0] if hf.results else None
        effects = hf.effects
        offsets = [i * _VAL_STRIDE for i in range(len(kinds))]

        def callback(_ctx: int, values: int) -> int:
            state = self.state
            try:
                if effects and state.speculative:
                    raise MustRunOnThread(hf.name)
                params: list[Any] = [
                    ffi.read_i64(values + off) if kind == "i64" else ffi.read_i64(values + off) & 0xFFFFFFFF
                    for kind, off in zip(kinds, offsets, strict=True)
                ]
                value = impl(self, *params)
                if result == "i64":
                    ffi.write_i64(values, value or 0)
                elif result == "i32":
                    ffi.write_i32(values, value or 0)
                return 0
            except BaseException as exc:
                state.pending = exc
                return ffi.new_trap(f"{hf.module}.{hf.name}: {exc}")

        return callback

    @staticmethod
    def _wasi_config(capture: OutputCapture) -> WasiConfig:
        """No args, env, preopened directories or sockets; output to capture files."""
        config = WasiConfig()
        config.stdout_file = capture.paths["stdout"]
        config.stderr_file = capture.paths["stderr"]
        return config

    def _collect_output(self) -> None:
        capture = self._capture
        if capture is None:
            return
        written = capture.collect()
        if written:
            for stream, data in written.items():
                self.state.write(stream, data)
            if capture.exhausted:
                self.broken = True  # retire it: its output files only grow

    def close(self) -> None:
        if self._capture is not None:
            self._capture.close()


def _func(export: object) -> Func:
    """A function export (the plugin's checks at load made sure of it)."""
    assert isinstance(export, Func)
    return export
