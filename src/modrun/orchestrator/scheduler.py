"""Placement policies: which eligible runtime gets a module.

The control thread filters runtimes first (alive, ``apis`` covering the
module's, free capacity); a policy only orders what is left. Both policies are
deterministic for a given state: ties break by runtime name, then uuid.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from modrun.errors import ConfigError
from modrun.orchestrator.state import Runtime


class Policy(Protocol):
    name: str
    indexed: bool  # ModuleControl may pick with a LoadIndex instead (least-loaded's order)

    def choose(self, candidates: Sequence[Runtime], counts: Mapping[str, int]) -> Runtime: ...

    def state(self) -> dict: ...

    def restore(self, state: dict) -> None: ...


def _key(runtime: Runtime) -> tuple[str, str]:
    return (runtime.name, runtime.uuid)


def load_share(load: Mapping) -> float:
    """The CPU and memory shares a runtime reported (each 0..1), added to its
    module count so that, of two with as many modules, the idler wins. Worked
    out when a keepalive brings them, not at every placement."""
    return _share(load.get("cpu_percent")) + _share(load.get("mem_percent"))


def _share(percent: object) -> float:
    if isinstance(percent, int | float) and percent >= 0:
        return min(float(percent), 100.0) / 100.0
    return 0.0


class LeastLoaded:
    name = "least-loaded"
    indexed = True

    def choose(self, candidates: Sequence[Runtime], counts: Mapping[str, int]) -> Runtime:
        # two cheap passes (the lowest score, then the first by name among those)
        # instead of one with a tuple per runtime: a burst of creates on a thousand
        # runtimes spends its time here
        get = counts.get
        best = min(get(r.uuid, 0) + r.load_share for r in candidates)
        return min((r for r in candidates if get(r.uuid, 0) + r.load_share == best), key=_key)

    def state(self) -> dict:
        return {}

    def restore(self, state: dict) -> None:
        pass


class RoundRobin:
    """Takes runtimes in (name, uuid) order, resuming after the last one chosen
    (remembered across orchestrator restarts)."""

    name = "round-robin"
    indexed = False

    def __init__(self) -> None:
        self.last: tuple[str, str] | None = None

    def choose(self, candidates: Sequence[Runtime], counts: Mapping[str, int]) -> Runtime:
        ordered = sorted(candidates, key=_key)
        chosen = next((r for r in ordered if self.last is None or _key(r) > self.last), ordered[0])
        self.last = _key(chosen)
        return chosen

    def state(self) -> dict:
        return {"last": list(self.last) if self.last else None}

    def restore(self, state: dict) -> None:
        last = state.get("last") if isinstance(state, dict) else None
        self.last = (str(last[0]), str(last[1])) if isinstance(last, list) and len(last) == 2 else None


POLICIES: dict[str, Callable[[], Policy]] = {"least-loaded": LeastLoaded, "round-robin": RoundRobin}


def make_policy(name: str) -> Policy:
    try:
        return POLICIES[name]()
    except KeyError:
        raise ConfigError(f"--scheduler must be one of {', '.join(POLICIES)}, not {name!r}") from None
