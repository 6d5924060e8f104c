"""The connection services host functions use, swapped whole on manifest reload."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modrun.connections.dgraph import DgraphConnections
from modrun.connections.http import HttpConnections
from modrun.connections.resolve import ResolvedManifest
from modrun.connections.sql import SqlConnections
from modrun.models.providers import Inference, ModelInvoker

RETIRE_AFTER = 120.0
"""Seconds a replaced bundle stays open for calls that still hold it."""


@dataclass(frozen=True)
class ServiceBundle:
    http: HttpConnections
    sql: SqlConnections
    dgraph: DgraphConnections
    models: ModelInvoker
    # an app secret by name (Modus's getSecretValue); None: not set, or not for this caller
    app_secret: Callable[[str], str | None] = field(default=lambda _name: None)

    def close(self) -> None:
        self.http.close()
        self.sql.close()
        self.dgraph.close()


def build_bundle(
    resolved: ResolvedManifest,
    model_host: str | None = None,
    on_inference: Callable[[Inference], None] | None = None,
    executors: Any = None,
    app_secret: Callable[[str], str | None] | None = None,
) -> ServiceBundle:
    http = HttpConnections(resolved.http)
    return ServiceBundle(
        http=http,
        sql=SqlConnections(resolved.sql),
        dgraph=DgraphConnections(resolved.dgraph),
        models=ModelInvoker(resolved.models, http, model_host, on_inference, executors),
        app_secret=app_secret or (lambda _name: None),
    )


class NodeServices:
    """Holder of the current bundle. A call reads ``current`` once and keeps
    using that bundle, so a reload never changes connections under it."""

    def __init__(self, bundle: ServiceBundle | None = None) -> None:
        self.current = bundle or build_bundle(ResolvedManifest())

    def replace(self, bundle: ServiceBundle) -> None:
        old, self.current = self.current, bundle
        timer = threading.Timer(RETIRE_AFTER, old.close)
        timer.daemon = True
        timer.start()

    def close(self) -> None:
        self.current.close()
