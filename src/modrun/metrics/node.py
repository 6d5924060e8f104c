"""Prometheus instruments of a node (served by ``GET /metrics``).

Function-call metrics are on the hot path of every call, so they are kept in
plain per-function counters (a bisect and a few integer adds under a lock) and
turned into Prometheus families only when ``/metrics`` is scraped.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

DURATION_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class FunctionRecorder:
    """Counts for one function: calls, errors by kind, duration histogram."""

    __slots__ = ("buckets", "calls", "errors", "labels", "lock", "total_seconds")

    def __init__(self, plugin: str, function: str) -> None:
        self.labels = [plugin, function]
        self.calls = 0
        self.total_seconds = 0.0
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.errors: dict[str, int] = {}
        self.lock = threading.Lock()

    def record(self, seconds: float, error_kind: str | None = None) -> None:
        index = bisect_left(DURATION_BUCKETS, seconds)
        with self.lock:
            self.calls += 1
            self.total_seconds += seconds
            self.buckets[index] += 1
            if error_kind is not None:
                self.errors[error_kind] = self.errors.get(error_kind, 0) + 1


class _FunctionCollector(Collector):
    def __init__(self, metrics: NodeMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator:
        calls = CounterMetricFamily("modrun_function_calls", "Function calls", labels=["plugin", "function"])
        errors = CounterMetricFamily(
            "modrun_function_errors",
            "Function calls that failed, by kind of failure",
            labels=["plugin", "function", "kind"],
        )
        duration = HistogramMetricFamily(
            "modrun_function_duration_seconds", "Function call duration", labels=["plugin", "function"]
        )
        for rec in list(self._metrics.recorders.values()):
            with rec.lock:
                count, total, counts = rec.calls, rec.total_seconds, list(rec.buckets)
                errs = dict(rec.errors)
            calls.add_metric(rec.labels, count)
            for kind, n in sorted(errs.items()):
                errors.add_metric([*rec.labels, kind], n)
            cumulative, running = [], 0
            for bound, n in zip((*map(str, DURATION_BUCKETS), "+Inf"), counts, strict=True):
                running += n
                cumulative.append((bound, running))
            duration.add_metric(rec.labels, cumulative, total)
        yield calls
        yield errors
        yield duration


class _HistoryCollector(Collector):
    def __init__(self, history: Any) -> None:
        self._history = history

    def collect(self) -> Iterator:
        h = self._history
        yield GaugeMetricFamily(
            "modrun_inference_history_pending",
            "Inference rows not yet in the database (queued or spooled)",
            value=h.pending,
        )
        yield GaugeMetricFamily(
            "modrun_inference_history_spooled",
            "Inference rows waiting in the spool file",
            value=h.spooled_rows,
        )
        yield CounterMetricFamily(
            "modrun_inference_history_written", "Inference rows written to the database", value=h.written
        )
        yield CounterMetricFamily(
            "modrun_inference_history_dropped",
            "Inference rows lost (queue full or unwritable)",
            value=h.dropped,
        )


class _AdmissionCollector(Collector):
    def __init__(self, admission: Any) -> None:
        self._admission = admission

    def collect(self):
        a = self._admission
        yield GaugeMetricFamily("modrun_calls_running", "Calls admitted and running", value=a.running)
        yield GaugeMetricFamily("modrun_calls_waiting", "Calls waiting for a place", value=a.waiting)
        shed = CounterMetricFamily(
            "modrun_calls_shed", "Calls answered 503 at once under load, by reason", labels=["reason"]
        )
        for reason, count in a.shed.items():
            shed.add_metric([reason], count)
        yield shed


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.recorders: dict[tuple[str, str], FunctionRecorder] = {}
        self.registry.register(_FunctionCollector(self))
        self.plugins_loaded = Gauge("modrun_plugins_loaded", "Plugins loaded", registry=self.registry)
        self.load_errors = Gauge(
            "modrun_plugin_load_errors", "Plugins that failed to load", registry=self.registry
        )
        self.reloads = Counter(
            "modrun_catalog_reloads", "Times the set of plugins changed", registry=self.registry
        )
        self.inferences = Counter(
            "modrun_model_inferences", "Model invocations", ["model", "status"], registry=self.registry
        )
        self.inference_seconds = Histogram(
            "modrun_model_inference_seconds",
            "Model invocation duration",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

    def attach_history(self, history: Any) -> None:
        """Expose the inference-history writer's counts."""
        if history is not None:
            self.registry.register(_HistoryCollector(history))

    def attach_admission(self, admission: Any) -> None:
        """Expose the load shedder's counts (api/admission.py)."""
        self.registry.register(_AdmissionCollector(admission))

    def inference(self, model: str, status: str, seconds: float) -> None:
        self.inferences.labels(model, status).inc()
        self.inference_seconds.labels(model).observe(seconds)

    def recorder(self, plugin: str, function: str) -> FunctionRecorder:
        key = (plugin, function)
        rec = self.recorders.get(key)
        if rec is None:
            rec = self.recorders.setdefault(key, FunctionRecorder(plugin, function))
        return rec
