"""A fleet with no single point of failure, and the losses it is put through:
two orchestrators on one PostgreSQL, a 3-member NATS cluster (MQTT on
JetStream), three real nodes given both orchestrators' URLs, and steady calls
through both gateways. Each step SIGKILLs (or SIGSTOPs) one process, waits
for the fleet to recover, brings the process back and says what the calls
saw. ``tests/fleet/test_chaos.py`` runs one round; ``bench/bench_chaos.py``
runs many."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

from fleet_support import CallLoad, NatsCluster, OrchestratorProcess, broker_member
from modrun.http.bases import Bases
from support import HELLO_AS, ModrunServer, wait_until

KEEPALIVE = 1.0
# a keepalive timeout that outlives NATS's own recovery from a lost member (test_broker_cluster)
KEEPALIVE_TIMEOUT = 40.0
QUIET = 2 * KEEPALIVE + 0.5  # the silence after which a gateway passes a node over
CLIENTS = 3  # callers per gateway


@dataclass
class Step:
    """What one loss cost: calls that failed from the loss until the fleet had
    recovered (``during``) and after that (``after``: the target is none)."""

    name: str
    recovered_in: float = 0.0
    during: list[int] = field(default_factory=list)
    after: list[int] = field(default_factory=list)
    note: str = ""
    why: list[str] = field(default_factory=list)  # what the failed calls got
    # failed calls sent once the lost process was gone (exited, or paused and
    # passed over): none may fail, whatever was in flight on it before
    late: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.name:<14} recovered in {self.recovered_in:5.2f} s; failed calls: "
            f"{len(self.during)} during ({len(self.late)} sent after it was gone), {len(self.after)} after"
            f"{'; ' + self.note if self.note else ''}"
        )


class ChaosFleet:
    def __init__(self, root: Path, db: str) -> None:
        self.root = root
        self.db = sa.create_engine(
            db.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.NullPool
        )
        self.nats = NatsCluster(3)
        common = (
            "--db",
            db,
            "--migrate",
            "--mqtt",
            self.nats.url,
            "--keepalive",
            f"{KEEPALIVE:g}s",
            "--keepaliveTimeout",
            f"{KEEPALIVE_TIMEOUT:g}s",
        )
        self.orchestrators = [
            OrchestratorProcess(root / "fleet", *common, "--instance", name) for name in ("a", "b")
        ]
        self.nodes: dict[str, ModrunServer] = {}
        self.modules: list[str] = []
        self.loads: list[CallLoad] = []
        a, b = self.orchestrators
        self.urls = f"{a.url},{b.url}"
        self.bases = Bases(self.urls)  # the fleet's API through whichever orchestrator answers
        self.http = httpx.Client(timeout=30)

    # -- the fleet ---------------------------------------------------------------------

    def start(self) -> ChaosFleet:
        a, b = self.orchestrators
        a.start()
        wait_until(lambda: a.role() == "leader", timeout=10, what="a leads")
        b.start()
        for name in ("n1", "n2", "n3"):
            (self.root / name).mkdir()
            self.nodes[name] = ModrunServer(
                self.root / name, self.root / name, "--noreload", "--orchestrator", self.urls, "--name", name
            ).start()
        stored = self.request("PUT", "/api/files/hello.wasm", content=HELLO_AS.read_bytes())
        assert stored.status_code == 201, stored.text
        wait_until(lambda: len(self.alive()) == 3, timeout=30, what="3 nodes")
        for i in range(3):
            self.create_module(f"hello{i}")
        wait_until(lambda: len(self.placements()) == 3, timeout=30, what="three replicas serving")
        return self

    def create_module(self, name: str) -> str:
        made = self.request(
            "POST", "/api/modules/", json={"name": name, "file": "hello.wasm", "apis": ["extism"]}
        )
        assert made.status_code == 201, made.text
        self.modules.append(made.json()["uuid"])
        return self.modules[-1]

    def stop(self) -> None:
        for load in self.loads:
            load.__exit__()
        for node in self.nodes.values():
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGCONT)  # a paused node cannot act on SIGTERM
            node.stop()
        for orchestrator in self.orchestrators:
            orchestrator.stop()
        self.nats.stop()
        self.http.close()
        self.db.dispose()

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """The fleet's API, as a client given both orchestrators (writes reach the leader)."""
        return self.bases.request(lambda base: self.http.request(method, base + path, **kwargs))  # type: ignore[arg-type]

    def _get(self, path: str) -> dict:
        return self.request("GET", path).json()

    def leader(self) -> OrchestratorProcess:
        found = [o for o in self.orchestrators if o.role() == "leader"]
        assert len(found) == 1, [o.role() for o in self.orchestrators]
        return found[0]

    def alive(self) -> set[str]:
        return {r["name"] for r in self._get("/api/runtimes/")["results"]}

    def placements(self) -> dict[str, list[str]]:
        """module uuid -> the live runtimes that say they serve it (from their keepalives)."""
        found: dict[str, list[str]] = {}
        for runtime in self._get("/api/runtimes/")["results"]:
            detail = self._get(f"/api/runtimes/{runtime['uuid']}/")
            for module in {f.get("module") for f in detail.get("functions", []) if f.get("module")}:
                found.setdefault(module, []).append(runtime["name"])
        return found

    def disagreements(self) -> dict[str, tuple[str | None, list[str]]]:
        """Modules where the database and the nodes differ: module uuid -> (the
        runtime its row in PostgreSQL names, the runtimes that say they serve it).
        Every module created is alive in the database and runs on exactly its
        runtime, and no node serves a module the database does not place there."""
        with self.db.connect() as conn:
            placed = dict(
                conn.execute(
                    sa.text(
                        "SELECT m.uuid, r.name FROM fleet_modules m"
                        " LEFT JOIN fleet_runtimes r ON r.uuid = m.parent WHERE m.status = 'A'"
                    )
                ).all()
            )
        serving = self.placements()
        wrong: dict[str, tuple[str | None, list[str]]] = {}
        for module in set(placed) | set(serving) | set(self.modules):
            runtime, where = placed.get(module), sorted(serving.get(module, []))
            if where != ([runtime] if runtime else []) or runtime is None:
                wrong[module] = (runtime, where)
        return wrong

    def settled(self, steady: float = 5.0, timeout: float = 120.0) -> float:
        """Every node alive and every module served once, where the database
        places it, for ``steady`` seconds running; when that began."""
        deadline = time.monotonic() + timeout
        since: float | None = None
        while time.monotonic() < deadline:
            if self.alive() == set(self.nodes) and not self.disagreements():
                since = since or time.monotonic()
                if time.monotonic() - since >= steady:
                    return since
            else:
                since = None
            time.sleep(0.2)
        raise AssertionError(f"the fleet did not settle: {self.disagreements()}")

    # -- load --------------------------------------------------------------------------

    @contextlib.contextmanager
    def load(self) -> Iterator[None]:
        """Steady calls through both gateways; callers of one move to the other
        only while theirs cannot be reached."""
        a, b = self.orchestrators
        self.loads = [
            CallLoad(f"{a.url},{b.url}", "/functions/greet", clients=CLIENTS, body=b"Ada"),
            CallLoad(f"{b.url},{a.url}", "/functions/greet", clients=CLIENTS, body=b"Ada"),
        ]
        for load in self.loads:
            load.__enter__()
        try:
            yield
        finally:
            for load in self.loads:
                load.__exit__()
            self.loads = []

    def calls(self) -> int:
        return sum(len(load.results) for load in self.loads)

    def _failed(self, since: float, until: float = float("inf")) -> list[int]:
        return [s for load in self.loads for t, s in load.results if since <= t < until and s != 200]

    def _why(self, since: float) -> list[str]:
        return [why for load in self.loads for t, _sent, why in load.failures if t >= since]

    def _late(self, gone: float) -> list[str]:
        return [
            f"{why} (sent {sent - gone:+.3f} s)"
            for load in self.loads
            for _t, sent, why in load.failures
            if sent >= gone
        ]

    def _measure(
        self, name: str, lost: float, recovered: float, note: str = "", gone: float | None = None
    ) -> Step:
        """``gone``: from when no call could still reach the lost process (a
        killed one's exit: while the kernel tears it down, a connection may
        still be taken into its accept queue and then reset)."""
        time.sleep(2)  # calls after recovery
        return Step(
            name,
            recovered - lost,
            self._failed(lost, recovered),
            self._failed(recovered),
            note,
            self._why(lost),
            self._late(lost if gone is None else gone),
        )

    # -- the losses ----------------------------------------------------------------------

    def kill_leader(self) -> Step:
        """SIGKILL the leading orchestrator; the other takes over; it is started again."""
        leader = self.leader()
        other = next(o for o in self.orchestrators if o is not leader)
        assert leader.proc is not None
        leader.proc.send_signal(signal.SIGKILL)
        lost = time.monotonic()
        leader.proc.wait()
        gone = time.monotonic()
        wait_until(lambda: other.role() == "leader", timeout=10, what="the follower takes over")
        takeover = time.monotonic() - lost
        leader.start()
        wait_until(lambda: leader.role() == "follower", timeout=20, what="the old leader follows")
        return self._measure("leader", lost, time.monotonic(), f"takeover {takeover:.2f} s", gone)

    def kill_broker_member(self) -> Step:
        """SIGKILL the broker member the leader is connected to; it is started again."""
        port = broker_member(self.leader().log())
        self.nats.kill(self.nats.ports.index(port))
        lost = time.monotonic()
        processes = [*self.orchestrators, *self.nodes.values()]
        wait_until(
            lambda: all(broker_member(p.log()) != port for p in processes),
            timeout=60,
            what="every client on another member",
        )
        moved = time.monotonic() - lost
        recovered = self.settled()  # NATS's own recovery, its late Last Wills included
        self.nats.restart(self.nats.ports.index(port))
        return self._measure("broker member", lost, recovered, f"every client moved in {moved:.2f} s")

    def _node_serving(self, module: str) -> str:
        return self.placements()[module][0]

    def _moved_off(self, victim: str) -> Callable[[], bool]:
        def moved() -> bool:
            now = self.placements()
            return len(now) == len(self.modules) and all(victim not in where for where in now.values())

        return moved

    def kill_node(self) -> Step:
        """SIGKILL a node serving a replica; the replica is placed on another; it is started again."""
        victim = self._node_serving(self.modules[0])
        node = self.nodes[victim]
        assert node.proc is not None
        node.proc.send_signal(signal.SIGKILL)
        lost = time.monotonic()
        node.proc.wait()
        gone = time.monotonic()
        wait_until(self._moved_off(victim), timeout=60, what="its replica placed again")
        recovered = time.monotonic()
        node.start()
        step = self._measure("node killed", lost, recovered, gone=gone)
        self.settled()
        return step

    def pause_node(self) -> Step:
        """SIGSTOP a node serving a replica: once it has been silent a little while
        the gateways give it no new calls; when it is declared dead its replica
        moves; SIGCONT brings it back, and it drops what it no longer owns."""
        victim = self._node_serving(self.modules[1])
        node = self.nodes[victim]
        assert node.proc is not None
        node.proc.send_signal(signal.SIGSTOP)
        lost = time.monotonic()
        time.sleep(QUIET + 0.5)
        passed_over = time.monotonic()
        probed = self._probe()
        wait_until(self._moved_off(victim), timeout=KEEPALIVE_TIMEOUT + 30, what="its replica placed again")
        recovered = time.monotonic()
        node.proc.send_signal(signal.SIGCONT)
        step = self._measure("node paused", lost, recovered, f"new calls while paused: {probed}", passed_over)
        self.settled()
        return step

    def _probe(self, calls: int = 10) -> str:
        """New calls through each gateway while a node is paused: how many
        answered within 5 s."""
        answered = 0
        for orchestrator in self.orchestrators:
            with httpx.Client(base_url=orchestrator.url, timeout=5) as client:
                for _ in range(calls):
                    with contextlib.suppress(httpx.HTTPError):
                        answered += client.post("/functions/greet", content=b"Ada").status_code == 200
        return f"{answered}/{calls * len(self.orchestrators)} answered"

    def late_module_placed(self, name: str = "late") -> None:
        """No control message lost: a module created now reaches a node."""
        module = self.create_module(name)
        wait_until(lambda: module in self.placements(), timeout=60, what="the late module serving")
