"""What the orchestrator's routes and gateway app use of the running service.

The service (``modrun.head``) composes these parts; the HTTP side depends on
this protocol only, so it never imports the composition root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from modrun.control.guard import CallGuard
    from modrun.control.plane import ControlPlane
    from modrun.fleet.broker import EmbeddedBroker
    from modrun.mqtt.client import MqttLink
    from modrun.orchestrator.callstats import CallStats
    from modrun.orchestrator.config import OrchestratorSettings
    from modrun.orchestrator.engine import ControlLoop
    from modrun.orchestrator.files import FileStore
    from modrun.orchestrator.forward import LeaderForward
    from modrun.orchestrator.gateway import Gateway
    from modrun.orchestrator.leadership import Campaign
    from modrun.orchestrator.metrics import OrchestratorMetrics
    from modrun.orchestrator.output import ModuleOutput


class Head(Protocol):
    settings: OrchestratorSettings
    control: ControlLoop  # the one owner of fleet state
    control_plane: ControlPlane
    files: FileStore
    output: ModuleOutput
    broker: EmbeddedBroker | None  # the embedded broker, unless --mqtt names one
    mqtt: MqttLink
    gateway: Gateway
    guard: CallGuard | None  # None for an open fleet (--auth none)
    metrics: OrchestratorMetrics
    calls: CallStats
    campaign: Campaign | None  # several orchestrators (PostgreSQL): who leads
    forward: LeaderForward | None  # a follower's writes to the leader

    def advertised_broker(self, request_host: str) -> str: ...
