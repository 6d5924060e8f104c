"""What a runtime tells the orchestrator of itself: its registration and
keepalive documents (modules, load, and the functions and GraphQL fields it
serves, so the gateway can route calls to it)."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable

from modrun.agent.bundles import PREFIX as BUNDLE_PREFIX
from modrun.agent.bundles import BundleRun
from modrun.agent.modules import Hosted
from modrun.metrics import procfs
from modrun.plugins.catalog import Catalog


def platform_document() -> dict:
    total, _ = procfs.meminfo()
    return {
        "cpu": {"arch": platform.machine(), "cores": os.cpu_count()},
        "mem": {"total": total},
        "os": platform.system(),
    }


def load_document(cpu: procfs.CpuShare, modules: int) -> dict:
    cores = os.cpu_count() or 1
    total, available = procfs.meminfo()
    rss = procfs.rss()
    return {
        "cpu_percent": round(cpu.percent(), 2),
        "cores": cores,
        "mem_used": rss,
        "mem_total": total,
        "mem_percent": round(rss / total * 100, 2) if total else 0.0,
        "mem_available": available,
        "modules": modules,
    }


_DESCRIBED = ("signature", "description", "params", "input", "returns", "streams", "chat")


def functions_document(catalog: Catalog, hosted: Iterable[Hosted]) -> list[dict]:
    """Every function the node serves: its catalog's (with the module that
    placed each plugin) and those of its bundle modules' child apps."""
    hosted = list(hosted)
    modules = {h.plugin: h.uuid for h in hosted if h.plugin}
    out = []
    for fn in sorted(catalog.by_key.values(), key=lambda f: f.key):
        described = catalog.describe_function(fn)
        out.append(
            {
                "name": fn.name,
                "plugin": fn.plugin,
                "module": modules.get(fn.plugin),
                "path": described["path"],
                "operation": described["graphql"]["operation"],
                "field": described["graphql"]["field"],
                **{key: described[key] for key in _DESCRIBED},
            }
        )
    for module in hosted:
        run = module.run
        if not isinstance(run, BundleRun):
            continue
        for listed in run.functions:
            path = listed.get("path") or "/functions/" + listed["name"]
            out.append(
                {
                    "name": listed["name"],
                    "plugin": listed.get("plugin"),
                    "module": module.uuid,
                    "path": f"{BUNDLE_PREFIX}{module.uuid}{path}",
                    **{key: listed.get(key) for key in _DESCRIBED},
                }
            )
    return out


def graphql_fields(catalog: Catalog) -> list[str]:
    """Root fields of the node's GraphQL schema (``query.x``, ``mutation.y``,
    ``subscription.z``), so the gateway can send a request to a node that has
    all it asks for."""
    tables = (
        ("query", catalog.queries),
        ("mutation", catalog.mutations),
        ("subscription", catalog.subscriptions),
    )
    return sorted(f"{operation}.{field}" for operation, table in tables for field in table)
