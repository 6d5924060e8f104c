"""The host functions a node offers, by import name."""

from __future__ import annotations

from modrun.hostfns import assemblyscript, dgraph, env, http, models, sql, streams
from modrun.wasm.host import HostFunction


def default_host_functions() -> dict[tuple[str, str], HostFunction]:
    groups = (env, http, assemblyscript, models, sql, dgraph, streams)
    return {(f.module, f.name): f for group in groups for f in group.FUNCTIONS}
