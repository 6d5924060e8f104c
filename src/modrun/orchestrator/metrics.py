"""The orchestrator's Prometheus metrics: gateway calls by status, runtimes and modules by state."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from modrun.fleet import protocol as P
from modrun.orchestrator.engine import ControlLoop
from modrun.orchestrator.leadership import Campaign


class OrchestratorMetrics:
    def __init__(self, control: ControlLoop, campaign: Campaign | None = None) -> None:
        self.registry = CollectorRegistry()
        self.gateway_calls = Counter(
            "modrun_gateway_calls",
            "Calls forwarded by the gateway, by answer status",
            ["status"],
            registry=self.registry,
        )
        self.registry.register(_FleetCollector(control, campaign))


class _FleetCollector(Collector):
    def __init__(self, control: ControlLoop, campaign: Campaign | None) -> None:
        self.control = control
        self.campaign = campaign

    def collect(self):
        runtimes = GaugeMetricFamily("modrun_fleet_runtimes", "Runtimes by state", labels=["state"])
        modules = GaugeMetricFamily("modrun_fleet_modules", "Modules by state", labels=["state"])
        runtime_states, module_states = self.control.snapshot(
            lambda fleet: ([P.STATES[r.status] for r in fleet.runtimes.values()], fleet.module_states())
        )
        for state in P.STATES.values():
            runtimes.add_metric([state], runtime_states.count(state))
            modules.add_metric([state], module_states.get(state, 0))
        yield runtimes
        yield modules
        lag = GaugeMetricFamily(
            "modrun_control_lag_seconds",
            "Time from a message's arrival on MQTT to its handling, over the latest 4096",
            labels=["quantile"],
        )
        for q, value in zip(("0.5", "0.99"), self.control.lag.quantiles(0.5, 0.99), strict=True):
            if value is not None:
                lag.add_metric([q], value)
        yield lag
        yield GaugeMetricFamily(
            "modrun_control_backlog",
            "Messages and calls waiting for the control loop",
            value=self.control.backlog,
        )
        yield from self._leadership()

    def _leadership(self):
        yield GaugeMetricFamily(
            "modrun_orchestrator_leading",
            "1 while this orchestrator leads the fleet",
            value=1 if self.control.leading else 0,
        )
        leader = self.campaign.leader if self.campaign is not None else None
        if leader is not None:
            yield GaugeMetricFamily(
                "modrun_orchestrator_term", "The fleet's leadership term", value=leader.term
            )
            yield GaugeMetricFamily(
                "modrun_orchestrator_leader_since_seconds",
                "Unix time the current leader took over",
                value=leader.since.timestamp(),
            )
