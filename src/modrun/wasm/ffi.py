"""The low-level wasmtime C API calls modrun makes, kept in one place.

wasmtime-py's ``Func.__call__`` looks types up and converts values on every call,
which costs several microseconds. A plugin call is a handful of tiny calls, so the
hot path uses the C API's *unchecked* entry points with argument buffers and
addresses prepared once per instance. Everything here deals in plain integers
(addresses); nothing outside ``modrun.wasm`` should import it.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from ctypes import c_int64, c_size_t, c_uint64, c_void_p
from typing import Any

from wasmtime import Func, FuncType, Store, Trap
from wasmtime import _ffi as _wt

ValRaw = _wt.wasmtime_val_raw


def _proc(name: str, restype: Any, *argtypes: Any) -> Callable[..., int]:
    """A private function pointer (``dll[name]`` is not cached by ctypes), so
    changing its signature does not affect wasmtime-py's own bindings."""
    fn = _wt.dll[name]
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


call_unchecked = _proc(
    "wasmtime_func_call_unchecked", c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p
)
memory_data = _proc("wasmtime_memory_data", c_size_t, c_void_p, c_void_p)
memory_data_size = _proc("wasmtime_memory_data_size", c_size_t, c_void_p, c_void_p)
set_epoch_deadline = _proc("wasmtime_context_set_epoch_deadline", None, c_void_p, c_uint64)
caller_context = _proc("wasmtime_caller_context", c_void_p, c_void_p)
_trap_new = _proc("wasmtime_trap_new", c_void_p, ctypes.c_char_p, c_size_t)
_func_new_unchecked = _proc(
    "wasmtime_func_new_unchecked", None, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p
)

HostCallback = Callable[[int, int], int]
"""``callback(caller_context_address, args_and_results_address) -> trap address or 0``."""

_HOST_CALLBACKS: dict[int, HostCallback] = {}
_next_key = 1

_TRAMPOLINE_T = ctypes.CFUNCTYPE(c_size_t, c_void_p, c_void_p, c_void_p, c_size_t)
_FINALIZER_T = ctypes.CFUNCTYPE(None, c_void_p)


@_TRAMPOLINE_T
def _trampoline(env: int, caller: int, values: int, _nvalues: int) -> int:
    try:
        return _HOST_CALLBACKS[env](caller_context(caller), values)
    except BaseException as exc:  # a trap is the only way back into wasm
        return new_trap(f"host function failed: {exc!r}")


@_FINALIZER_T
def _finalize(env: int, _callbacks: dict = _HOST_CALLBACKS) -> None:
    # bound as a default: stores may be finalized during interpreter shutdown,
    # after this module's globals are gone
    _callbacks.pop(env, None)


def new_trap(message: str) -> int:
    """A trap to return from a host callback; wasmtime takes ownership."""
    data = message.encode()
    return _trap_new(data, len(data)) or 0


def host_func(store: Store, ty: FuncType, callback: HostCallback) -> Func:
    """A host function of type ``ty`` in ``store`` whose arguments and results
    are exchanged as raw values at ``args_and_results_address``."""
    global _next_key
    key = _next_key
    _next_key += 1
    _HOST_CALLBACKS[key] = callback
    raw = _wt.wasmtime_func_t()
    _func_new_unchecked(
        ctypes.addressof(store._context().contents),
        ctypes.addressof(ty.ptr().contents),
        ctypes.cast(_trampoline, c_void_p),
        key,
        ctypes.cast(_finalize, c_void_p),
        ctypes.addressof(raw),
    )
    return Func._from_raw(raw)


def context_address(store: Store) -> int:
    return ctypes.addressof(store._context().contents)


def func_address(func: Func) -> int:
    """Address of the ``wasmtime_func_t`` inside ``func`` (kept alive by it)."""
    return ctypes.addressof(func._func)


def memory_address(memory: object) -> int:
    return ctypes.addressof(memory._memory)  # type: ignore[attr-defined]


def read_i64(address: int) -> int:
    return c_int64.from_address(address).value


def read_pair(address: int) -> tuple[int, int]:
    """Two consecutive i64 words (e.g. the kernel's output offset and length).
    Two scalar reads measure faster than one two-element array read."""
    return c_int64.from_address(address).value, c_int64.from_address(address + 8).value


def write_i64(address: int, value: int) -> None:
    c_int64.from_address(address).value = value


def write_i32(address: int, value: int) -> None:
    ctypes.c_int32.from_address(address).value = value


def take_trap(trap_holder: c_void_p) -> Trap | None:
    """The trap a call left in ``trap_holder``, as an owned wasmtime ``Trap``."""
    address = trap_holder.value
    if not address:
        return None
    trap_holder.value = None
    return Trap._from_ptr(ctypes.cast(address, ctypes.POINTER(_wt.wasm_trap_t)))


def error_message(error_address: int) -> str:
    """Message of a ``wasmtime_error_t`` returned by a call; frees it."""
    from wasmtime import WasmtimeError

    err = WasmtimeError._from_ptr(ctypes.cast(error_address, ctypes.POINTER(_wt.wasmtime_error_t)))
    return str(err)


class ExportName:
    """An export's name, encoded once, for ``export_address``."""

    def __init__(self, name: str) -> None:
        raw = name.encode()
        self.name, self.buffer, self.length = name, ctypes.create_string_buffer(raw, len(raw)), len(raw)


_export_get = _proc(
    "wasmtime_instance_export_get", ctypes.c_bool, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p
)


def export_address(ctx: int, instance: object, name: ExportName, holder: list) -> int:
    """The address of a function's or memory's handle among an instance's
    exports (0: no such export), without wrapping it: wasmtime-py's
    ``exports()`` wraps every export, hundreds of microseconds for a module
    with dozens. ``holder`` keeps the handle alive."""
    item = _wt.wasmtime_extern_t()
    found = _export_get(
        ctx,
        ctypes.addressof(instance._instance),  # type: ignore[attr-defined]
        ctypes.addressof(name.buffer),
        name.length,
        ctypes.addressof(item),
    )
    if not found:
        return 0
    holder.append(item)
    if item.kind == _wt.WASMTIME_EXTERN_FUNC.value:
        return ctypes.addressof(item.of.func)
    return ctypes.addressof(item.of.memory) if item.kind == _wt.WASMTIME_EXTERN_MEMORY.value else 0
