"""Modules the orchestrator placed on this node, by kind.

* An Extism plugin joins the node's catalog under the module's name and is
  served like a local plugin until the module is deleted.
* A WASI command runs to its exit on a thread (``modrun.wasm.command``);
  its stdout/stderr lines go to ``{realm}/proc/stdout|stderr/{uuid}`` and to
  any ``w`` channel, ``r`` channels on ``/stdin`` feed its stdin, and its end
  is reported with ``exited`` (exit code, reason, message, duration).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from modrun.plugins.wasmbin import module_kind
from modrun.wasm.command import CommandRun, CommandSpec
from modrun.wasm.limits import Limits

if TYPE_CHECKING:
    from modrun.agent.bundles import BundleRun
    from modrun.metrics.node import NodeMetrics

log = logging.getLogger("modrun.agent")

Publish = Callable[[str, Any], None]


LINES_PER_SECOND = 100  # output lines a plugin module may ship, each second


class OutputBudget:
    """A token bucket of output lines, counting what it refuses."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.at = time.monotonic()
        self.dropped = 0
        self._reported = 0

    def take(self) -> bool:
        moment = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (moment - self.at) * self.rate)
        self.at = moment
        if self.tokens < 1:
            self.dropped += 1
            return False
        self.tokens -= 1
        return True

    def dropped_since_last(self) -> int:
        count, self._reported = self.dropped - self._reported, self.dropped
        return count


@dataclass
class Hosted:
    uuid: str
    name: str
    kind: str
    started: float = field(default_factory=time.monotonic)
    plugin: str | None = None  # the catalog name of a plugin module
    group: str | None = None  # the module's group (a deployment's: deploy:<artifact>:v<n>)
    run: CommandRun | BundleRun | None = None  # a WASI command's run, or a bundle's child app
    deleting: bool = False
    last_cpu: tuple[float, float] = (0.0, 0.0)  # (monotonic, busy seconds) at the last keepalive
    last_active: float | None = None
    output_budget: OutputBudget = field(default_factory=lambda: OutputBudget(LINES_PER_SECOND))

    def busy_seconds(self, metrics: NodeMetrics) -> tuple[float, int]:
        if self.run is not None:
            return self.run.cpu_seconds(), 0
        calls, seconds = 0, 0.0
        for (plugin, _fn), rec in list(metrics.recorders.items()):
            if plugin == self.plugin:
                calls += rec.calls
                seconds += rec.total_seconds
        return seconds, calls

    def stats(self, metrics: NodeMetrics) -> dict:
        moment = time.monotonic()
        busy, calls = self.busy_seconds(metrics)
        then, busy_then = self.last_cpu
        span = moment - then if then else moment - self.started
        cpu = max(0.0, (busy - busy_then) / span * 100) if span > 0 else 0.0
        self.last_cpu = (moment, busy)
        return {
            "uuid": self.uuid,
            "name": self.name,
            "kind": self.kind,
            "active": self.last_active if self.last_active is not None else -1,
            "cpu_usage_percent": round(cpu, 3),
            "mem_usage": 0,
            "calls": calls,
            "running_sec": round(moment - self.started, 3),
        }


def is_tenants(data: dict) -> bool:
    """A module of a tenant's deployment (``args.tenant``): the orchestrator says so
    unless its artifact's owner is an admin."""
    raw_args = data.get("args")
    return isinstance(raw_args, dict) and raw_args.get("tenant") is True


def plugin_limits(base: Limits, data: dict) -> Limits | None:
    """A module's ``args.limits`` (``timeout`` seconds, ``max_memory`` bytes) over ``base``."""
    raw_args = data.get("args")
    args = raw_args if isinstance(raw_args, dict) else {}
    wanted = args.get("limits")
    if not isinstance(wanted, dict) or not wanted:
        return None
    timeout, memory = wanted.get("timeout", base.timeout), wanted.get("max_memory", base.max_memory)
    if not isinstance(timeout, int | float) or timeout <= 0 or not isinstance(memory, int) or memory <= 0:
        raise ValueError(f"bad module limits {wanted!r}")
    return replace(base, timeout=float(timeout), max_memory=memory)


def command_spec(wasm: bytes, data: dict, limits: Limits) -> CommandSpec:
    raw_args = data.get("args")
    args = raw_args if isinstance(raw_args, dict) else {}
    raw_argv_list = data.get("args")
    argv_list = raw_argv_list if isinstance(raw_argv_list, list) else None
    argv = args.get("argv") or argv_list or [str(data.get("file", "module.wasm")).rsplit("/", 1)[-1]]
    env = []
    for item in args.get("env") or []:
        key, _, value = str(item).partition("=")
        env.append((key, value))
    if "timeout" in args:
        from modrun.config.units import parse_duration

        limits = Limits(timeout=parse_duration(str(args["timeout"])), max_memory=limits.max_memory)
    channels = [c for c in data.get("channels") or [] if isinstance(c, dict)]
    files = [
        c["path"]
        for c in channels
        if "w" in c.get("mode", "rw")
        and c.get("path") not in ("/stdout", "/stderr", "/stdin")
        and str(c.get("path", "")).startswith("/")
    ]
    stdin = any("r" in c.get("mode", "rw") and c.get("path") == "/stdin" for c in channels)
    return CommandSpec(
        wasm=wasm, argv=[str(a) for a in argv], env=env, limits=limits, stdin=stdin, files=files
    )


def kind_of(wasm: bytes, data: dict) -> str:
    raw_args = data.get("args")
    args = raw_args if isinstance(raw_args, dict) else {}
    wanted = args.get("kind") or data.get("kind")
    if wanted in ("plugin", "wasi", "bundle"):
        return wanted
    return module_kind(wasm)
