"""``env.abort``, which AssemblyScript modules import unless built with
``--use abort=...``: turns the guest's abort into a readable error."""

from __future__ import annotations

import struct

from modrun.errors import GuestError
from modrun.wasm.host import GuestCall, HostFunction


def _as_string(call: GuestCall, ptr: int) -> str:
    """An AssemblyScript string: UTF-16LE, byte length stored just before it."""
    if ptr == 0:
        return ""
    try:
        (length,) = struct.unpack("<I", call.read_guest(ptr - 4, 4))
        return call.read_guest(ptr, length).decode("utf-16-le", "replace")
    except Exception:
        return "?"


def abort(call: GuestCall, message: int, filename: int, line: int, column: int) -> None:
    text = _as_string(call, message)
    where = _as_string(call, filename)
    raise GuestError(f"abort: {text} ({where}:{line}:{column})")


FUNCTIONS = [HostFunction("env", "abort", ("i32", "i32", "i32", "i32"), (), abort)]
