"""``/metrics`` across the processes of one node.

The process a scrape reaches asks its siblings for their own exposition (over
their private unix sockets, ``/metrics?process=self``) and adds the samples up:
counters, histograms and most gauges are sums over processes. Gauges every
process reports alike (plugins loaded) take the largest value instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from modrun.config.slot import ProcessSlot

SAME_IN_EVERY_PROCESS = {"modrun_plugins_loaded", "modrun_plugin_load_errors"}
PEER_TIMEOUT = 2.0


async def gather_peers(slot: ProcessSlot) -> list[str]:
    """The sibling processes' expositions; one restarting is left out."""

    async def one(path: Path) -> str | None:
        transport = httpx.AsyncHTTPTransport(uds=str(path))
        async with httpx.AsyncClient(transport=transport, timeout=PEER_TIMEOUT) as client:
            try:
                response = await client.get("http://process/metrics", params={"process": "self"})
            except httpx.HTTPError:
                return None
        return response.text if response.status_code == 200 else None

    texts = await asyncio.gather(*(one(path) for path in slot.peers))
    return [text for text in texts if text is not None]


def merge_expositions(texts: list[str]) -> bytes:
    """One exposition holding the samples of all ``texts`` added up, plus
    ``modrun_processes``: how many processes answered."""
    merged: dict[str, Metric] = {}
    values: dict[str, dict[tuple, float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            if family.name not in merged:
                merged[family.name] = Metric(family.name, family.documentation, family.type)
                values[family.name] = {}
            into = values[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                into[key] = (
                    sample.value
                    if key not in into
                    else _combine(family.name, sample.name, into[key], sample.value)
                )
    for name, family in merged.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    processes = GaugeMetricFamily(
        "modrun_processes", "Node processes whose metrics these are", value=len(texts)
    )
    registry = CollectorRegistry()
    registry.register(_Fixed([*merged.values(), processes]))
    return generate_latest(registry)


def _combine(family: str, sample: str, a: float, b: float) -> float:
    """Two processes' values of one sample: creation times keep the earliest,
    gauges alike in every process the largest, everything else adds up."""
    if sample.endswith("_created"):
        return min(a, b)
    if family in SAME_IN_EVERY_PROCESS:
        return max(a, b)
    return a + b


class _Fixed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


class RestartsCollector(Collector):
    """``modrun_process_restarts``: times this process's slot was restarted
    after its process died (summed over the node's processes)."""

    def __init__(self, slot: ProcessSlot) -> None:
        self._slot = slot

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "modrun_process_restarts",
            "Node processes restarted after they died",
            value=self._slot.restarts,
        )
