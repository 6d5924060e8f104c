"""The least-loaded policy's index picks exactly what a scan of every runtime
picks: the same runtime for every module, through placements, loads that
keepalives change, groups kept apart, full runtimes, deletes and deaths; and
the index of modules by runtime lists what a scan of every module does."""

from __future__ import annotations

import random

from modrun.fleet import protocol as P
from modrun.orchestrator.fleet import Fleet
from modrun.orchestrator.modules import ModuleControl
from modrun.orchestrator.runtimes import take_report
from modrun.orchestrator.scheduler import LeastLoaded
from modrun.orchestrator.state import Runtime


class Scanning(LeastLoaded):
    indexed = False


def fleet_of(seed: int) -> Fleet:
    rng = random.Random(seed)
    runtimes = {}
    for i in range(60):
        uuid = f"r{i:03d}"
        runtimes[uuid] = Runtime(
            uuid=uuid,
            name=f"node-{rng.randrange(20):02d}",  # names repeat: ties go to the uuid
            max_nmodules=rng.choice([0, 0, 3, 5]),
            apis=rng.choice([["wasm", "wasi"], ["wasm", "wasi", "extism"]]),
            metadata={"labels": {"zone": rng.choice(["eu", "us"])}},
        )
    return Fleet(P.Topics("realm"), runtimes, {}, {})


def lookup(_path: str) -> tuple[str, str]:
    return ("0" * 64, "plugin")


def test_the_index_places_every_module_where_a_scan_would():
    for seed in range(5):
        rng = random.Random(seed)
        fleets = [fleet_of(seed), fleet_of(seed)]
        controls = [
            ModuleControl(fleets[0], LeastLoaded(), lookup),
            ModuleControl(fleets[1], Scanning(), lookup),
        ]
        assert controls[0].index is not None and controls[1].index is None
        placed = 0
        for step in range(600):
            action = rng.random()
            if action < 0.6:
                data = {
                    "type": "module",
                    "uuid": f"m{step}",
                    "name": f"m{step}",
                    "file": "x.wasm",
                    "apis": rng.choice([["wasm"], ["extism"]]),
                    "labels": rng.choice([{}, {"zone": "eu"}]),
                    "group": rng.choice([None, None, f"g{rng.randrange(5)}"]),
                }
                made = [c.create(dict(data)) for c in controls]
                assert made[0].parent == made[1].parent, (seed, step)
                placed += made[0].status == P.ALIVE
            elif action < 0.85:  # a keepalive brings a new load
                uuid = f"r{rng.randrange(60):03d}"
                load = {"cpu_percent": rng.uniform(0, 100), "mem_percent": rng.uniform(0, 100)}
                for fleet in fleets:
                    take_report(fleet, fleet.runtimes[uuid], {"load": dict(load)}, 0.0)
            elif action < 0.97:  # a module goes
                alive = sorted(u for u, m in fleets[0].modules.items() if m.status == P.ALIVE)
                if alive:
                    victim = rng.choice(alive)
                    for fleet, control in zip(fleets, controls, strict=True):
                        control.exited({"uuid": victim, "exit_code": 0})
                        assert fleet.modules[victim].status == fleets[0].modules[victim].status
            else:  # a runtime dies: the eligibility (and the index) are worked out again
                uuid = f"r{rng.randrange(60):03d}"
                for fleet in fleets:
                    fleet.runtimes[uuid].status = P.DEAD
                    fleet.touch_runtime(fleet.runtimes[uuid])
            parents = [{u: m.parent for u, m in f.modules.items()} for f in fleets]
            assert parents[0] == parents[1], (seed, step)
            # the modules-by-runtime index (every keepalive asks it) against a scan
            runtime = f"r{step % 60:03d}"
            for statuses in ((P.ALIVE,), (P.ALIVE, P.EXITING, P.QUEUED), (P.DEAD, P.KILLED)):
                scanned = [
                    m for m in fleets[0].modules.values() if m.parent == runtime and m.status in statuses
                ]
                assert fleets[0].modules_on(runtime, *statuses) == sorted(scanned, key=lambda m: m.index)
        assert placed > 100  # the scenario placed many, not only queued
