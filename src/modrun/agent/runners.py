"""One runner per module kind, behind one interface.

The agent picks the runner by the module's kind (``kind_of``) and asks it to
start the module; what a runner returns is the ``details`` of the create reply.
A runner whose module runs on its own (a WASI command, a bundle's child app)
reports the end through ``Outlet.exited``; a plugin module ends when deleted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from modrun.agent.bundles import BundleRun
from modrun.agent.host import NodeHost
from modrun.agent.modules import Hosted, command_spec, is_tenants, plugin_limits
from modrun.fleet import protocol as P
from modrun.plugins.discovery import PluginSource
from modrun.wasm.command import CommandRun
from modrun.wasm.limits import Limits


@dataclass(frozen=True)
class Outlet:
    """How a runner talks to the fleet: publish (a no-op while not connected),
    subscribe, the realm's topics, and where a module's end is reported."""

    publish: Callable[..., None]
    subscribe: Callable[[str, Callable[[str, bytes], None]], None]
    topics: Callable[[], P.Topics]
    exited: Callable[[Hosted], None]
    secrets: Callable[[str], dict[str, str]]  # a module's deployment secrets


class ModuleRunner(Protocol):
    def start(self, hosted: Hosted, path: Path, data: dict) -> dict:
        """Start the module (raise RuntimeError, ValueError or OSError when it cannot);
        returns the details the orchestrator is told."""
        ...

    def stop(self, hosted: Hosted) -> bool:
        """Stop the module; True when its end is reported later (by ``Outlet.exited``)."""
        ...


class PluginRunner:
    """An Extism plugin joins the node's catalog under the module's name."""

    def __init__(self, host: NodeHost) -> None:
        self.host = host

    def start(self, hosted: Hosted, path: Path, data: dict) -> dict:
        manager = self.host.plugins
        name = hosted.name if hosted.name not in manager.names() else f"{hosted.name}-{hosted.uuid[:8]}"
        limits = plugin_limits(manager.options.limits, data)
        manager.set_extra(name, PluginSource(name, path, None, limits, tenant=is_tenants(data)))
        manager.refresh()
        plugin = manager.catalog.plugins.get(name)
        if plugin is None:
            error = manager.catalog.load_errors.get(name, "the plugin did not load")
            manager.set_extra(name, None)
            manager.refresh()
            raise RuntimeError(error)
        hosted.plugin = name
        return {"uuid": hosted.uuid, "kind": "plugin", "plugin": name, "functions": sorted(plugin.functions)}

    def stop(self, hosted: Hosted) -> bool:
        if hosted.plugin is not None:
            self.host.plugins.set_extra(hosted.plugin, None)
            self.host.plugins.refresh()
        return False


class _RunnerWithExit:
    """Runs that end on their own: killed on stop, awaited on a thread."""

    def __init__(self, host: NodeHost, outlet: Outlet) -> None:
        self.host = host
        self.outlet = outlet

    def _await(self, hosted: Hosted) -> None:
        def wait() -> None:
            assert hosted.run is not None
            hosted.run.wait()
            self.outlet.exited(hosted)

        threading.Thread(target=wait, name=f"modrun-module-{hosted.uuid[:8]}", daemon=True).start()

    def stop(self, hosted: Hosted) -> bool:
        if hosted.run is None:
            return False
        hosted.run.kill()  # its exit is reported when the waiting thread ends
        return True


class CommandRunner(_RunnerWithExit):
    """A WASI command runs to its exit; stdout/stderr go to the module's topics
    and ``w`` channels, ``r`` channels on ``/stdin`` feed its stdin."""

    def start(self, hosted: Hosted, path: Path, data: dict) -> dict:
        spec = command_spec(path.read_bytes(), data, self.host.limits)
        channels = [c for c in data.get("channels") or [] if isinstance(c, dict)]
        topics = self.outlet.topics()
        publish = self.outlet.publish

        def output(stream: str, line: bytes) -> None:
            hosted.last_active = time.time()
            if stream in ("stdout", "stderr"):
                publish(getattr(topics, stream)(hosted.uuid), line, qos=1)
            for channel in channels:
                if "w" in channel.get("mode", "rw") and channel.get("path") in (stream, "/" + stream):
                    publish(channel["topic"], line, qos=1)

        run = CommandRun(spec, self.host.engine, output)
        hosted.run = run
        for channel in channels:
            if "r" in channel.get("mode", "rw") and channel.get("path") == "/stdin":

                def feed(_topic: str, payload: bytes, run: CommandRun = run) -> None:
                    run.write_stdin(payload if payload.endswith(b"\n") else payload + b"\n")

                self.outlet.subscribe(channel["topic"], feed)
        run.start()
        self._await(hosted)
        return {"uuid": hosted.uuid, "kind": "wasi"}


class BundleRunner(_RunnerWithExit):
    """A bundle's app runs as a child ``modrun serve`` (agent/bundles.py)."""

    def start(self, hosted: Hosted, path: Path, data: dict) -> dict:
        topics = self.outlet.topics()

        def output(stream: str, line: bytes) -> None:
            self.outlet.publish(getattr(topics, stream)(hosted.uuid), line)

        limits: Limits = plugin_limits(self.host.limits, data) or self.host.limits
        serve_args = ["--timeout", f"{limits.timeout}s", "--maxMemory", str(limits.max_memory)]
        scratch = Path(self.host.storage_path).expanduser() / "fleet" / "bundles" / hosted.uuid
        # a shared database (PostgreSQL) records its inferences: its URL goes in the
        # environment, since a command line is readable by every local user
        env = {"MODRUN_DB": self.host.db} if self.host.db else {}
        run = BundleRun(hosted.uuid, path, scratch, serve_args, output, self.outlet.secrets(hosted.uuid), env)
        run.start()
        hosted.run = run
        self._await(hosted)
        names = sorted({f["name"] for f in run.functions})
        return {"uuid": hosted.uuid, "kind": "bundle", "functions": names}


def runners(host: NodeHost, outlet: Outlet) -> dict[str, Any]:
    """The runner of each module kind."""
    return {
        "plugin": PluginRunner(host),
        "wasi": CommandRunner(host, outlet),
        "bundle": BundleRunner(host, outlet),
    }
