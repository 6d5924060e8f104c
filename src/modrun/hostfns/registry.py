"""The host functions a node offers, by import name."""

from __future__ import annotations

from modrun.hostfns import assemblyscript, env, http
from modrun.hostfns.base import HostFunction


def default_host_functions() -> dict[tuple[str, str], HostFunction]:
    return {(f.module, f.name): f for f in (*env.FUNCTIONS, *http.FUNCTIONS, *assemblyscript.FUNCTIONS)}
