"""Extism's own host functions: config, vars and logging (``extism:host/env``)."""

from __future__ import annotations

from modrun.wasm.host import LEVELS, GuestCall, HostFunction, LogLine
from modrun.wasm.kernel import ENV_MODULE

LOG_OFF = 2**31 - 1
"""``get_log_level`` result when logging is off (Extism: trace=0 ... error=4)."""


def config_get(call: GuestCall, key: int) -> int:
    value = call.config.get(call.read(key).decode("utf-8", "replace"))
    return 0 if value is None else call.write(value.encode())


def var_get(call: GuestCall, key: int) -> int:
    value = call.state.var(call.vars, call.read(key))
    return 0 if value is None else call.write(value)


def var_set(call: GuestCall, key: int, value: int) -> None:
    call.state.set_var(call.read(key), call.read(value) if value else None)


def get_log_level(call: GuestCall) -> int:
    return call.log_level


def _logger(level: str):
    rank = LEVELS.index(level)

    def log(call: GuestCall, message: int) -> None:
        if rank >= call.log_level:
            text = call.read(message).decode("utf-8", "replace")
            call.state.log(LogLine(level, text))

    log.__name__ = f"log_{level}"
    return log


FUNCTIONS = [
    HostFunction(ENV_MODULE, "config_get", ("i64",), ("i64",), config_get),
    HostFunction(ENV_MODULE, "var_get", ("i64",), ("i64",), var_get),
    HostFunction(ENV_MODULE, "var_set", ("i64", "i64"), (), var_set),
    HostFunction(ENV_MODULE, "get_log_level", (), ("i32",), get_log_level),
    *(HostFunction(ENV_MODULE, f"log_{lvl}", ("i64",), (), _logger(lvl)) for lvl in LEVELS),
]
