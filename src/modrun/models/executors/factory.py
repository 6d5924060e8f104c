"""Executors for manifest models whose provider is local, ssh or embedded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modrun.manifest.model import ModelSpec
from modrun.models.executors.embedded import EmbeddedModel
from modrun.models.executors.local import LocalChannel
from modrun.models.executors.pool import ProcessPool
from modrun.models.executors.process import ModelProcess
from modrun.models.executors.protocol import JsonLines, Mer, Tokens

EXECUTOR_PROVIDERS = ("local", "ssh", "embedded")


def _protocol(spec: ModelSpec) -> tuple[Any, bool]:
    if spec.protocol == "mer":
        t = spec.tokens or {}
        return Mer(Tokens(**{k: v for k, v in t.items() if k in ("ready", "start", "stop", "exit")})), True
    return JsonLines(spec.ready), spec.ready


def make_executor(name: str, spec: ModelSpec, app_dir: Path) -> Any:
    if spec.provider == "embedded":
        return EmbeddedModel(name, spec.source_model)
    protocol, wait_ready = _protocol(spec)
    workdir = spec.workdir or "."

    def spawn() -> ModelProcess:
        if spec.provider == "local":
            path = Path(workdir) if Path(workdir).is_absolute() else app_dir / workdir
            channel: Any = LocalChannel(name, spec.command or "", path, spec.env)
        else:
            from modrun.models.executors.ssh import SshChannel

            channel = SshChannel(
                name,
                spec.host or "",
                spec.port,
                spec.user or "",
                spec.command or "",
                workdir,
                spec.env,
                spec.password,
                spec.private_key,
                spec.known_hosts,
            )
        try:
            return ModelProcess(name, channel, protocol, spec.ready_timeout, wait_ready)
        except Exception:
            channel.kill()
            raise

    return ProcessPool(name, spawn, spec.pool, spec.timeout, spec.queue_timeout)
