"""What the node's HTTP handlers are given: narrow parts, never the node itself.

The node (``modrun.node``) builds one ``NodeParts`` and hands it to the app;
each handler reads only the part it serves. A handler that needs something new
adds it here, so what the HTTP layer can reach stays visible in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from modrun.api.admission import Admission
from modrun.api.graphql_limits import GraphQLLimits

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from sqlalchemy.engine import Engine

    from modrun.config.slot import ProcessSlot
    from modrun.db.history import BatchedWriter
    from modrun.manifest.model import ModelSpec
    from modrun.models.executors.registry import ExecutorRegistry
    from modrun.models.providers import ModelInvoker
    from modrun.plugins.catalog import Catalog
    from modrun.plugins.invoker import Invoker


class CatalogSource(Protocol):
    """Whatever holds the current catalog (an immutable snapshot, swapped on reload)."""

    @property
    def catalog(self) -> Catalog: ...


@dataclass(frozen=True)
class FunctionParts:
    """REST calls, GraphQL, the Lambda protocol, OpenAPI."""

    plugins: CatalogSource
    invoker: Invoker
    max_input: int  # bytes a call's body may have (--maxInput)
    timeout: float  # seconds a request's calls may take together (--timeout)
    graphql_limits: GraphQLLimits
    load_errors: Callable[[], dict[str, str]]

    @property
    def catalog(self) -> Catalog:
        return self.plugins.catalog


class ModelCatalogView(Protocol):
    @property
    def models(self) -> dict[str, ModelSpec]: ...

    @property
    def sources(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class ModelParts:
    """``/models``: the merged catalog, executors, the registry and access log."""

    catalog: ModelCatalogView
    executors: ExecutorRegistry
    db: Engine
    access_log: BatchedWriter
    invoker: Callable[[], ModelInvoker]  # the current manifest's (swapped on reload)
    sync: Callable[[], None]  # re-merge manifest and registry models after a change
    allow_changes: bool  # --allowRuntimeChanges


@dataclass(frozen=True)
class StatusParts:
    """``/health``, ``/metrics``, ``/inferences``."""

    started_at: float
    environment: str
    slot: ProcessSlot | None
    describe_storage: Callable[[], str]
    missing_secrets: Callable[[], list[str]]
    metrics: CollectorRegistry
    db: Engine


@dataclass(frozen=True)
class NodeParts:
    functions: FunctionParts
    models: ModelParts
    status: StatusParts
    admission: Admission
    stream_admission: Admission
