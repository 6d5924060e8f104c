"""The fleet gateway: ``POST /functions/{name}`` on the orchestrator goes to
a live node serving that function.

Nodes report the functions they serve in every keepalive; the gateway keeps
an index (rebuilt when the fleet's version changes) and takes replicas
round-robin. A node that refuses the connection is skipped for a few seconds
and the call is retried once on another replica (nothing reached the dead
node, so the retry is safe). When no replica serves the function but the
module that provides it is being placed again (failover), the call waits for
it up to ``--gatewayWait`` instead of failing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from modrun.orchestrator import protocol as P
from modrun.orchestrator.engine import ControlLoop
from modrun.orchestrator.fleet import Fleet
from modrun.orchestrator.upstream import Answer, Refused, UpstreamPool

log = logging.getLogger("modrun.gateway")

SUSPECT_FOR = 3.0
POLL = 0.02
WATCH = 0.25  # how often a call in flight checks that its node is alive
_FORWARDED = frozenset({b"content-type", b"accept", b"authorization", b"x-api-key", b"x-request-id"})


@dataclass(frozen=True)
class Replica:
    runtime: str
    name: str
    url: str  # the node's full URL for this function


class NoReplica(Exception):
    pass


class Gateway:
    def __init__(self, loop: ControlLoop, wait: float, timeout: float = 60.0) -> None:
        self.loop = loop
        self.wait = wait
        self._version = -1
        self._index: dict[str, list[Replica]] = {}
        self._providers: dict[str, str] = {}  # function key -> module uuid last seen providing it
        self._turns: dict[str, Iterator[int]] = {}
        self._suspect: dict[str, float] = {}
        self.upstream = UpstreamPool(timeout)
        self._inflight: dict[asyncio.Task, Replica] = {}
        self._doomed: set[asyncio.Task] = set()
        self._watchdog: asyncio.Task | None = None

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        await self.upstream.close()

    # -- the index ------------------------------------------------------------------

    def _refresh(self) -> None:
        if self.loop.fleet.version == self._version:
            return
        self._version, self._index = self.loop.snapshot(self._build)

    def _build(self, fleet: Fleet) -> tuple[int, dict[str, list[Replica]]]:
        index: dict[str, list[Replica]] = {}
        for runtime in sorted(fleet.runtimes.values(), key=lambda r: (r.name, r.uuid)):
            if not runtime.alive or runtime.url is None:
                continue
            for fn in runtime.functions:
                path = fn.get("path") or f"/functions/{fn['name']}"
                replica = Replica(runtime.uuid, runtime.name, runtime.url + path)
                keys = [fn["name"]] + ([f"{fn['plugin']}/{fn['name']}"] if fn.get("plugin") else [])
                for key in keys:
                    index.setdefault(key, []).append(replica)
                    if isinstance(fn.get("module"), str):
                        self._providers[key] = fn["module"]
        return fleet.version, index

    def functions(self) -> list[dict]:
        """Every function in the fleet and where it runs (``GET /api/functions``)."""

        def collect(fleet: Fleet) -> list[dict]:
            found: dict[tuple[str, str], dict] = {}
            for runtime in sorted(fleet.runtimes.values(), key=lambda r: (r.name, r.uuid)):
                if not runtime.alive:
                    continue
                for fn in runtime.functions:
                    key = (fn["name"], str(fn.get("plugin", "")))
                    entry = found.setdefault(
                        key,
                        {k: fn.get(k) for k in ("name", "plugin", "module", "signature", "description")}
                        | {"runtimes": []},
                    )
                    entry["runtimes"].append({"uuid": runtime.uuid, "name": runtime.name, "url": runtime.url})
            return [found[k] for k in sorted(found)]

        return self.loop.snapshot(collect)

    def _pick(self, key: str, exclude: set[str]) -> Replica | None:
        self._refresh()
        replicas = self._index.get(key, ())
        if not replicas:
            return None
        moment = time.monotonic()
        usable = [
            r for r in replicas if r.runtime not in exclude and self._suspect.get(r.runtime, 0) < moment
        ]
        if not usable:
            usable = [r for r in replicas if r.runtime not in exclude]
        if not usable:
            return None
        turn = next(self._turns.setdefault(key, itertools.count()))
        return usable[turn % len(usable)]

    def known(self, key: str) -> bool:
        """Whether some module provided this function at some point."""
        return key in self._providers

    def _being_placed(self, key: str) -> bool:
        module = self._providers.get(key)
        if module is None:
            return False
        found = self.loop.snapshot(lambda fleet: fleet.modules.get(module))
        return found is not None and found.status in (P.ALIVE, P.QUEUED)

    async def _replica(self, key: str, exclude: set[str]) -> Replica:
        replica = self._pick(key, exclude)
        if replica is not None:
            return replica
        deadline = time.monotonic() + self.wait
        while self._being_placed(key) and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
            replica = self._pick(key, exclude)
            if replica is not None:
                return replica
        raise NoReplica(key)

    # -- forwarding -------------------------------------------------------------------

    async def _watch(self) -> None:
        """Abandon calls held by nodes declared dead (a hung node would hold
        them until the read timeout)."""
        while True:
            await asyncio.sleep(WATCH)
            if not self._inflight:
                continue
            dead = self.loop.snapshot(
                lambda fleet: {
                    u for u in {r.runtime for r in self._inflight.values()} if not _alive(fleet, u)
                }
            )
            for task, replica in list(self._inflight.items()):
                if replica.runtime in dead and task not in self._doomed:
                    self._doomed.add(task)
                    task.cancel()

    async def _post(self, replica: Replica, body: bytes, headers: list[tuple[bytes, bytes]]) -> Answer:
        if self._watchdog is None:
            self._watchdog = asyncio.ensure_future(self._watch())
        task = asyncio.current_task()
        assert task is not None
        self._inflight[task] = replica
        try:
            return await self.upstream.post(replica.url, body, headers)
        except asyncio.CancelledError:
            if task not in self._doomed:
                raise
            task.uncancel()
            raise NodeDied(f"node {replica.name} was declared dead during the call") from None
        finally:
            self._inflight.pop(task, None)
            self._doomed.discard(task)

    async def forward(
        self, key: str, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> tuple[Replica, Answer]:
        tried: set[str] = set()
        for attempt in range(2):
            replica = await self._replica(key, tried)
            try:
                return replica, await self._post(replica, body, headers)
            except Refused as exc:
                tried.add(replica.runtime)
                self._suspect[replica.runtime] = time.monotonic() + SUSPECT_FOR
                log.warning(
                    "node %s refused %s (%s)%s", replica.name, key, exc, "; retrying" if not attempt else ""
                )
        raise NoReplica(key)


def _alive(fleet: Fleet, runtime: str) -> bool:
    found = fleet.runtimes.get(runtime)
    return found is not None and found.alive


class NodeDied(Exception):
    pass


def forwarded_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The request headers a node needs (ASGI gives them lower-cased)."""
    return [(name, value) for name, value in raw if name in _FORWARDED]
