"""What the fleet agent uses of the node it joins to a fleet, and how it joins.

The node (``modrun.node``) hands the agent these parts, never itself: the
agent adds modules to the plugin catalog, watches calls for their output,
runs WASI commands on the node's engine and reads per-plugin call counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modrun.metrics.node import NodeMetrics
from modrun.plugins.invoker import Invoker
from modrun.plugins.manager import PluginManager
from modrun.wasm.engine import WasmEngine
from modrun.wasm.limits import Limits

APIS = ["wasm", "wasi", "extism", "channels"]


@dataclass
class JoinSettings:
    orchestrator: str
    mqtt: str | None = None
    name: str | None = None
    apis: list[str] = field(default_factory=lambda: list(APIS))
    max_modules: int = 0
    url: str | None = None  # how the orchestrator's gateway reaches this node
    token: str | None = None  # the join token of a secured fleet
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeHost:
    plugins: PluginManager
    invoker: Invoker
    engine: WasmEngine
    metrics: NodeMetrics
    limits: Limits  # the node's per-call limits (--timeout, --maxMemory)
    storage_path: Path
    host: str
    port: int
    db: str | None = None  # --db: where a bundle's child node records its inferences
