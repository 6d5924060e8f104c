"""The fleet gateway: ``POST /functions/{name}`` on the orchestrator goes to
a live node serving that function.

Nodes report the functions they serve in every keepalive; the gateway keeps
an index (rebuilt when the fleet's version changes) and takes replicas
round-robin. A node that refuses the connection is skipped for a few seconds
and the call is retried once on another replica (nothing reached the dead
node, so the retry is safe). A node whose keepalives stopped gets no new
calls while another replica can take them, long before it is declared dead
(a paused or cut-off node would hold them); calls it already holds are
abandoned when it is declared dead. When no replica serves the function but the
module that provides it is being placed again (failover), or while the
process has not yet heard every live node's keepalive (it has just started:
the functions nodes serve are known only from their keepalives), the call
waits for it up to ``--gatewayWait`` instead of failing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from modrun.control.guard import NO_ARTIFACT
from modrun.fleet import protocol as P
from modrun.fleet.groups import artifact_of_group
from modrun.http.upstream import Answer, Refused, Streamed, UpstreamPool
from modrun.orchestrator.engine import ControlLoop
from modrun.orchestrator.fleet import Fleet

log = logging.getLogger("modrun.gateway")

SUSPECT_FOR = 3.0
POLL = 0.02
WATCH = 0.25  # how often a call in flight checks that its node is alive
_FORWARDED = frozenset(
    {
        b"content-type",
        b"accept",
        b"x-request-id",
    }
)


@dataclass(frozen=True)
class Replica:
    runtime: str
    name: str
    url: str  # the node's full URL for this function


class NoReplica(Exception):
    pass


Picker = Callable[[set[str]], "Replica | None"]
Signer = Callable[[Replica], list[tuple[bytes, bytes]]]  # the headers that vouch for a call to one replica
Post = Callable[[Replica, bytes, list[tuple[bytes, bytes]]], Awaitable["Answer | Streamed"]]


class Gateway:
    def __init__(
        self,
        loop: ControlLoop,
        wait: float,
        timeout: float = 60.0,
        placed_only: bool = False,
        max_response: int | None = None,
        quiet_after: float = float("inf"),
    ) -> None:
        self.loop = loop
        self.quiet_after = quiet_after  # silence after which a node is passed over
        # a secured fleet routes only to what the orchestrator placed: a node that
        # claims functions it was never given gets no calls
        self.placed_only = placed_only
        self.wait = wait
        self._version = -1
        self._index: dict[str, list[Replica]] = {}
        self._graphql: list[tuple[Replica, frozenset[str]]] = []
        self._providers: dict[str, str] = {}  # function key -> module uuid last seen providing it
        self._artifacts: dict[str, frozenset[str]] = {}  # function key -> artifacts providing it
        self._turns: dict[str, Iterator[int]] = {}
        self._suspect: dict[str, float] = {}
        self.upstream = UpstreamPool(timeout, max_body=max_response)
        self._inflight: dict[asyncio.Task, Replica] = {}
        self._doomed: set[asyncio.Task] = set()
        self._watchdog: asyncio.Task | None = None
        self._warm_by = time.monotonic() + quiet_after  # every live node has spoken by then
        self._warm = False

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        await self.upstream.close()

    # -- the index ------------------------------------------------------------------

    def _refresh(self) -> None:
        if self.loop.fleet.version == self._version:
            return
        self._version, self._index, self._graphql, self._artifacts = self.loop.snapshot(self._build)

    def _build(
        self, fleet: Fleet
    ) -> tuple[
        int, dict[str, list[Replica]], list[tuple[Replica, frozenset[str]]], dict[str, frozenset[str]]
    ]:
        index: dict[str, list[Replica]] = {}
        graphql: list[tuple[Replica, frozenset[str]]] = []
        artifacts: dict[str, set[str]] = {}
        for runtime in sorted(fleet.runtimes.values(), key=lambda r: (r.name, r.uuid)):
            if not runtime.alive or runtime.url is None:
                continue
            placed_fields: set[str] = set()
            for fn in runtime.functions:
                module = fn.get("module") if isinstance(fn.get("module"), str) else None
                provider = fleet.modules.get(module) if module else None
                owned = (
                    provider is not None and provider.parent == runtime.uuid and provider.status == P.ALIVE
                )
                # a module it does not own (a node back from a pause, still running
                # what moved elsewhere until told to drop it) gets no calls; a
                # secured fleet routes to nothing but what it placed
                if (module or self.placed_only) and not owned:
                    continue
                roots = _root_fields(fn)
                placed_fields.update(roots)
                artifact = artifact_of_group(provider.group if provider else None) or NO_ARTIFACT
                keys = [fn["name"]] + ([f"{fn['plugin']}/{fn['name']}"] if fn.get("plugin") else [])
                path = fn.get("path") or f"/functions/{fn['name']}"
                replica = Replica(runtime.uuid, runtime.name, runtime.url + path)
                for key in keys:
                    index.setdefault(key, []).append(replica)
                keys.extend(roots)
                for key in keys:
                    artifacts.setdefault(key, set()).add(artifact)
                    if module:
                        self._providers[key] = module
            fields = runtime.graphql & placed_fields if self.placed_only else runtime.graphql
            graphql.append((Replica(runtime.uuid, runtime.name, runtime.url + "/graphql"), frozenset(fields)))
        frozen = {k: frozenset(v) for k, v in artifacts.items()}
        return fleet.version, index, graphql, frozen

    def artifacts(self, keys: Iterable[str]) -> set[str]:
        """The artifacts whose functions a call to ``keys`` (function names or
        GraphQL ``operation.field``) may run; NO_ARTIFACT for a node's own."""
        self._refresh()
        return {a for key in keys for a in self._artifacts.get(key, ())}

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
                        {
                            k: fn.get(k)
                            for k in (
                                "name",
                                "plugin",
                                "module",
                                "signature",
                                "description",
                                "params",
                                "input",
                                "returns",
                                "streams",
                                "chat",
                            )
                        }
                        | {"runtimes": []},
                    )
                    entry["runtimes"].append({"uuid": runtime.uuid, "name": runtime.name, "url": runtime.url})
            return [found[k] for k in sorted(found)]

        return self.loop.snapshot(collect)

    def _pick(self, key: str, exclude: set[str]) -> Replica | None:
        self._refresh()
        return self._rotate(key, self._index.get(key, ()), exclude)

    def _pick_graphql(self, fields: frozenset[str], exclude: set[str]) -> Replica | None:
        """A node whose schema has every root field the query asks for."""
        self._refresh()
        fitting = [replica for replica, have in self._graphql if fields <= have]
        # one rotation per set of fitting nodes: bounded by the fleet, not by the queries clients send
        return self._rotate("graphql:" + ",".join(r.runtime for r in fitting), fitting, exclude)

    def _rotate(self, key: str, replicas: Sequence[Replica], exclude: set[str]) -> Replica | None:
        """Round-robin over ``replicas``, skipping excluded and (if possible) suspect nodes."""
        if not replicas:
            return None
        moment = time.monotonic()
        usable = [r for r in replicas if r.runtime not in exclude and self._trusted(r.runtime, moment)]
        if not usable:
            usable = [r for r in replicas if r.runtime not in exclude]
        if not usable:
            return None
        turn = next(self._turns.setdefault(key, itertools.count()))
        return usable[turn % len(usable)]

    def _trusted(self, runtime: str, moment: float) -> bool:
        """Neither refused a connection lately nor silent past ``quiet_after``."""
        if self._suspect.get(runtime, 0) >= moment:
            return False
        found = self.loop.fleet.runtimes.get(runtime)
        return found is None or moment - found.last_seen <= self.quiet_after

    def known(self, key: str) -> bool:
        """Whether some module provided this function at some point."""
        return key in self._providers

    def _warming(self) -> bool:
        """Just started, with live nodes it has not heard from yet."""
        if self._warm:
            return False
        unheard = self.loop.snapshot(
            lambda fleet: any(r.alive and not r.reported for r in fleet.runtimes.values())
        )
        self._warm = not unheard or time.monotonic() > self._warm_by
        return not self._warm

    def _being_placed(self, key: str) -> bool:
        module = self._providers.get(key)
        if module is None:
            return False
        found = self.loop.snapshot(lambda fleet: fleet.modules.get(module))
        return found is not None and found.status in (P.ALIVE, P.QUEUED)

    async def _replica(self, pick: Picker, keys: Iterable[str], exclude: set[str]) -> Replica:
        """A replica now, or, while a module providing one of ``keys`` is being
        placed again, one as soon as it appears (up to ``--gatewayWait``)."""
        replica = pick(exclude)
        if replica is not None:
            return replica
        deadline = time.monotonic() + self.wait
        while (self._warming() or any(self._being_placed(k) for k in keys)) and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
            replica = pick(exclude)
            if replica is not None:
                return replica
        raise NoReplica(", ".join(keys))

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

    async def _post(
        self, replica: Replica, url: str, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> Answer:
        if self._watchdog is None:
            self._watchdog = asyncio.ensure_future(self._watch())
        task = asyncio.current_task()
        assert task is not None
        self._inflight[task] = replica
        try:
            return await self.upstream.post(url, body, headers)
        except asyncio.CancelledError:
            if task not in self._doomed:
                raise
            task.uncancel()
            raise NodeDied(f"node {replica.name} was declared dead during the call") from None
        finally:
            self._inflight.pop(task, None)
            self._doomed.discard(task)

    def _poster(self, stream: bool, path: str | None = None) -> Post:
        """How a call goes to a replica: its whole answer, or (``stream``) the
        answer passed on as it arrives; to the replica's own URL, or to
        ``path`` on the same node."""

        async def post(
            replica: Replica, body: bytes, headers: list[tuple[bytes, bytes]]
        ) -> Answer | Streamed:
            url = replica.url if path is None else replica.url.split("/functions/", 1)[0] + path
            if stream:
                return await self.upstream.stream(url, body, headers)
            return await self._post(replica, url, body, headers)

        return post

    async def forward(
        self,
        key: str,
        body: bytes,
        headers: list[tuple[bytes, bytes]],
        sign: Signer | None = None,
        stream: bool = False,
    ) -> tuple[Replica, Answer | Streamed]:
        """``POST /functions/{key}`` to a node serving the function; ``stream``:
        the answer's body is passed on as it arrives, never buffered."""
        return await self._send(
            lambda ex: self._pick(key, ex), [key], body, headers, sign, self._poster(stream)
        )

    async def chat(
        self, key: str, body: bytes, headers: list[tuple[bytes, bytes]], sign: Signer | None, stream: bool
    ) -> tuple[Replica, Answer | Streamed]:
        """``POST /v1/chat/completions`` for the chat-handler function ``key``,
        to the OpenAI-compatible route of a node serving it."""
        post = self._poster(stream, "/v1/chat/completions")
        return await self._send(lambda ex: self._pick(key, ex), [key], body, headers, sign, post)

    def chat_models(self) -> list[str]:
        """The chat-handler functions the fleet serves (``GET /v1/models``)."""
        return sorted({f["name"] for f in self.functions() if f.get("chat")})

    async def graphql(
        self,
        fields: frozenset[str],
        body: bytes,
        headers: list[tuple[bytes, bytes]],
        sign: Signer | None = None,
        stream: bool = False,
    ) -> tuple[Replica, Answer | Streamed]:
        """``POST /graphql`` to a node whose schema has every root field asked for
        (``fields``: the query's ``root_fields``); ``stream``: the answer is
        passed on as it comes (graphql-sse, subscriptions)."""
        picker: Picker = lambda ex: self._pick_graphql(fields, ex)  # noqa: E731
        return await self._send(picker, sorted(fields), body, headers, sign, self._poster(stream))

    async def _send(
        self,
        pick: Picker,
        keys: list[str],
        body: bytes,
        headers: list[tuple[bytes, bytes]],
        sign: Signer | None,
        post: Post,
    ) -> tuple[Replica, Answer | Streamed]:
        tried: set[str] = set()
        for attempt in range(2):
            replica = await self._replica(pick, keys, tried)
            vouched = headers + sign(replica) if sign is not None else headers
            try:
                return replica, await post(replica, body, vouched)
            except Refused as exc:
                tried.add(replica.runtime)
                self._suspect[replica.runtime] = time.monotonic() + SUSPECT_FOR
                log.warning(
                    "node %s refused a call (%s)%s", replica.name, exc, "; retrying" if not attempt else ""
                )
        raise NoReplica(", ".join(keys))


def _root_fields(fn: dict) -> list[str]:
    """The GraphQL root fields (``operation.field``) a function a node reports is."""
    field = fn.get("field")
    if not isinstance(field, str):
        return []
    fields = [f"{fn.get('operation', 'query')}.{field}"]
    if fn.get("streams"):
        fields.append(f"subscription.{field}")
    return fields


def _alive(fleet: Fleet, runtime: str) -> bool:
    found = fleet.runtimes.get(runtime)
    return found is not None and found.alive


class NodeDied(Exception):
    pass


def forwarded_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The request headers a node needs (ASGI gives them lower-cased)."""
    return [(name, value) for name, value in raw if name in _FORWARDED]
