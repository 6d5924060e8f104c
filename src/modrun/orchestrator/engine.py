"""The control loop: one thread owns the fleet state.

MQTT messages and API requests are queued to it. It takes them in batches
(up to ``BATCH`` at a time), applies each one, checks liveness and the queue,
writes everything the batch changed in one transaction, and only then
publishes the batch's messages and answers the API callers. A payload that
breaks a handler gets an error message on the log topic; the loop never dies.

With several orchestrators (PostgreSQL) the loop leads or follows. Leading,
every write is fenced by its term and records which control messages it
applied; following, it keeps a view of what the leader writes and hears
(``mirror``), refuses calls, and on taking over applies what the old leader
had not.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from modrun.fleet import protocol as P
from modrun.orchestrator.fleet import Fleet
from modrun.orchestrator.lag import LagWindow
from modrun.orchestrator.leadership import Deposed, NotLeader
from modrun.orchestrator.mirror import ReplayBuffer, carry_reports, message_key, patch
from modrun.orchestrator.modules import FileLookup, ModuleControl
from modrun.orchestrator.node_urls import Network
from modrun.orchestrator.runtimes import RuntimeControl, observe_keepalive
from modrun.orchestrator.scheduler import Policy
from modrun.orchestrator.store import Changes, FleetStore

log = logging.getLogger("modrun.orchestrator")

BATCH = 2000
POLICY_KEY = "scheduler"

Publish = Callable[[str, Any], None]


JUDGE_BACKLOG = 500
"""Messages waiting above which the loop does not declare silent runtimes dead."""
JUDGE_EVERY = 0.05
"""Seconds between liveness scans (batches come far more often under load)."""
FORGET_EVERY = 60.0
"""Seconds between prunings of the applied-messages record (leading)."""

Fence = Callable[[Connection, int], None]


@dataclass(frozen=True)
class Lead:
    term: int


@dataclass(frozen=True)
class Follow:
    pass


@dataclass(frozen=True)
class Refresh:
    """Rows the leader wrote (None: reload everything)."""

    runtimes: tuple[str, ...] | None = None
    modules: tuple[str, ...] = ()

    def merged(self, other: Refresh) -> Refresh:
        if self.runtimes is None or other.runtimes is None:
            return Refresh()
        return Refresh(tuple({*self.runtimes, *other.runtimes}), tuple({*self.modules, *other.modules}))


_TURNS = (Lead, Follow, Refresh)


class ControlLoop:
    def __init__(
        self,
        store: FleetStore,
        topics: P.Topics,
        policy: Policy,
        lookup_file: FileLookup,
        publish: Publish,
        ka_interval: float,
        ka_timeout: float,
        node_networks: Sequence[Network] = (),
        fence: Fence | None = None,
    ) -> None:
        self.store = store
        self.topics = topics
        self.policy = policy
        self.lookup_file = lookup_file
        self.ka_interval, self.ka_timeout = ka_interval, ka_timeout
        self.node_networks = node_networks
        # without a fence this is the only orchestrator (SQLite): it leads from the start, unfenced
        self._fence = fence
        self.leading = fence is None
        self.term: int | None = None
        self.on_deposed: Callable[[int], None] = lambda _term: None
        self.replay = ReplayBuffer()
        self.lock = threading.RLock()
        self._install()
        self.publish = publish
        self.tick = min(0.1, ka_interval / 10)
        self.delete_timeout = max(10.0, 3 * ka_interval)
        self.lag = LagWindow()  # arrival on MQTT to handling
        self._position = time.monotonic()  # arrival of the newest message handled
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._unsaved = Changes()
        self._forgot = time.monotonic()
        self._judged = 0.0
        self._replaying = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modrun-control", daemon=True)
        self.handled = 0
        self.watchers: list[Callable[[], None]] = []  # told (on the control thread) when the fleet changed

    def _install(self) -> None:
        """(Re)load the whole fleet from the database, keeping what keepalives told."""
        runtimes, managers, modules, settings = self.store.load()
        with self.lock:
            old = getattr(self, "fleet", None)
            self.policy.restore(settings.get(POLICY_KEY) or {})
            self._policy_state = self.policy.state()
            fleet = Fleet(self.topics, runtimes, managers, modules)
            self.modules = ModuleControl(fleet, self.policy, self.lookup_file)
            self.runtimes = RuntimeControl(
                fleet, self.modules, self.ka_interval, self.ka_timeout, self.node_networks
            )
            if old is not None:
                carry_reports(old.runtimes, runtimes)
                fleet.version = old.version + 1  # the gateway sees a new view
            self.fleet = fleet

    # -- thread-safe entry points --------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(None)
        self._thread.join(10)

    def on_mqtt(self, topic: str, payload: bytes) -> None:
        self._inbox.put((topic, payload, time.monotonic()))  # never waits: the reader must keep up

    @property
    def backlog(self) -> int:
        """Messages and calls waiting for the control thread."""
        return self._inbox.qsize()

    def call(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run ``fn(*args)`` on the control thread; the future resolves after
        the batch is committed (so what it returns is durable). A follower
        refuses it (NotLeader)."""
        future: Future = Future()
        self._inbox.put((fn, args, future))
        return future

    def turn(self, event: Lead | Follow | Refresh) -> None:
        """Leadership changed (Lead, Follow) or the leader wrote rows (Refresh).
        The leader's own commits come back as Refresh too: dropped at once
        (should it follow meanwhile, it reloads everything anyway)."""
        if isinstance(event, Refresh) and self.leading:
            return
        self._inbox.put(event)

    # -- the loop -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._inbox.get(timeout=self.tick)
            except queue.Empty:
                first = None
            batch = [first] if first is not None else []
            while len(batch) < BATCH:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    batch.append(item)
            segment: list = []
            refresh: Refresh | None = None  # the batch's refreshes, read in one go at its end
            for item in batch:  # leadership changes split the batch where they arrived
                if isinstance(item, Refresh):
                    refresh = item if refresh is None else refresh.merged(item)
                elif isinstance(item, _TURNS):
                    self._safely(self._step, segment)
                    segment = []
                    self._safely(self._take_turn, item)
                else:
                    segment.append(item)
            self._safely(self._step, segment)
            if refresh is not None:
                self._safely(self._take_turn, refresh)

    @staticmethod
    def _safely(fn: Callable[[Any], None], arg: Any) -> None:
        try:
            fn(arg)
        except Exception:  # never let the control thread die
            log.exception("control loop step failed")

    # -- leading and following ------------------------------------------------------

    def _take_turn(self, event: Lead | Follow | Refresh) -> None:
        if isinstance(event, Lead):
            try:
                self._lead(event.term)
            except Exception:  # a leader that cannot take over must let another one
                log.exception("could not take over the fleet (term %d): giving the lease up", event.term)
                self.leading, self.term = False, None
                self.on_deposed(event.term)
        elif isinstance(event, Follow):
            self._follow()
        elif not self.leading:
            version = self.fleet.version
            if event.runtimes is None:
                self._install()
            else:
                runtimes, modules = self.store.load_some(list(event.runtimes), list(event.modules))
                with self.lock:
                    patch(self.fleet, runtimes, modules)
            self._tell_watchers(version)

    def _lead(self, term: int) -> None:
        """Take over: the state as the old leader left it, then what it had not applied."""
        if self.leading and self.term == term:
            return
        self._install()
        self.term, self.leading = term, True
        heard = [(h.key, h) for h in self.replay.take()]  # each digest worked out once
        fresh = self.store.unhandled([key for key, _h in heard]) if heard else set()
        missed = [(h.topic, h.payload, h.arrived) for key, h in heard if key in fresh]
        log.info("leading (term %d): %d control messages the old leader had not applied", term, len(missed))
        self._replaying = True
        try:
            for start in range(0, len(missed), BATCH):
                self._step(missed[start : start + BATCH])
        finally:
            self._replaying = False

    def _follow(self) -> None:
        if not self.leading or self._fence is None:
            return
        version = self.fleet.version
        self.leading, self.term = False, None
        self._unsaved = Changes()
        self._install()  # what the database holds, not what this one had in hand
        self._tell_watchers(version)

    def _deposed(self, term: int) -> None:
        log.warning("term %d is over: what this batch changed is dropped, following", term)
        self._follow()
        self.on_deposed(term)

    def _tell_watchers(self, version: int) -> None:
        if self.fleet.version != version:
            for watcher in self.watchers:
                watcher()

    def _step_following(self, batch: list) -> None:
        refused = NotLeader("this orchestrator follows: the leader takes writes")
        for item in batch:
            if isinstance(item[2], Future):
                item[2].set_exception(refused)
                continue
            topic, payload, arrived = item
            if topic.startswith(self.topics.keepalive + "/"):
                try:
                    msg = P.decode(topic, payload)
                except P.ProtocolError:
                    continue
                with self.lock:
                    observe_keepalive(self.fleet, msg, arrived)
            else:
                self.replay.add(topic, payload, arrived)
        self.handled += len(batch)

    def _step(self, batch: list) -> None:
        if not self.leading:
            self._step_following(batch)
            return
        answers: list[tuple[Future, Any, BaseException | None]] = []
        remember = self._fence is not None
        with self.lock:
            version = self.fleet.version
            for item in batch:
                if isinstance(item[2], Future):
                    fn, args, future = item
                    try:
                        answers.append((future, fn(*args), None))
                    except BaseException as exc:
                        answers.append((future, None, exc))
                else:
                    topic, payload, arrived = item
                    if not self._replaying:  # a takeover's replay is old news, not lag
                        self.lag.record(time.monotonic() - arrived)
                    self.runtimes.arrived = self._position = arrived
                    try:
                        if self._handle(topic, payload) and remember:
                            self.fleet.changes.handled.append(message_key(topic, payload))
                    finally:
                        self.runtimes.arrived = None
            # deaths are judged where the loop is: while messages wait, as of the
            # newest one handled, so a loop that runs behind never declares a
            # runtime dead whose keepalive is waiting in the inbox; far behind (a
            # burst), silence is not judged at all: keepalives may be stuck ahead
            # of the inbox, in the broker or the socket (Last Wills still count)
            backlog = self._inbox.qsize()
            now = time.monotonic()
            if backlog <= JUDGE_BACKLOG and now - self._judged >= JUDGE_EVERY:  # a scan of every runtime
                self._judged = now
                self.runtimes.check_liveness(self._position if backlog else None)
            self.modules.confirm_stale_deletes(self.delete_timeout)
            self.modules.place_queued()
            state = self.policy.state()
            if state != self._policy_state:
                self._policy_state = state
                self.fleet.changes.settings[POLICY_KEY] = state
            changes, outbox = self.fleet.take()
            changed = self.fleet.version != version
        if not self._save(changes):  # deposed: nothing of this batch happened
            outbox = []
            refused = NotLeader("leadership changed during the request: retry")
            answers = [(future, None, refused) for future, _result, _error in answers]
        for topic, payload in outbox:
            self.publish(topic, payload)
        for future, result, error in answers:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
        self.handled += len(batch)
        if changed:
            for watcher in self.watchers:
                watcher()
        if remember and time.monotonic() - self._forgot > FORGET_EVERY:
            self._forgot = time.monotonic()
            self.store.forget_handled()

    def _save(self, changes: Changes) -> bool:
        """Write the batch; False when this orchestrator turned out not to lead.

        Alone (SQLite), a failed write is kept to retry with the next batch and
        the loop goes on. Fenced, it cannot prove it still leads: it follows."""
        pending = _merge(self._unsaved, changes)
        term = self.term
        try:
            self.store.save(pending, None if self._fence is None or term is None else self._fenced(term))
        except Deposed as exc:
            log.warning("%s", exc)
        except Exception as exc:
            if self._fence is None:
                log.error("cannot write fleet state (%s); keeping it to retry with the next batch", exc)
                self._unsaved = pending
                return True
            log.error("cannot write fleet state (%s): stepping down", exc)
        else:
            self._unsaved = Changes()
            return True
        self._deposed(term if term is not None else -1)
        return False

    def _fenced(self, term: int) -> Callable[[Connection], None]:
        fence = self._fence
        assert fence is not None
        return lambda conn: fence(conn, term)

    def _handle(self, topic: str, payload: bytes) -> bool:
        """Apply one message; True when it was a control message (not a
        keepalive, not a request to a runtime) a new leader must not apply again."""
        try:
            msg = P.decode(topic, payload)
            return self._dispatch(msg)
        except P.ProtocolError as exc:
            log.warning("refused message on %s: %s %s", topic, exc.desc, exc.data)
            self.fleet.error(exc)
        except Exception as exc:
            log.exception("message on %s broke a handler", topic)
            self.fleet.error(P.ProtocolError("internal error", f"{type(exc).__name__}: {exc}"))
        return not topic.startswith(self.topics.keepalive + "/")

    def _dispatch(self, msg: P.Message) -> bool:
        t = self.topics
        sub = msg.topic.rsplit("/", 1)[-1]
        if msg.topic.startswith(t.reg + "/"):
            if msg.is_request:
                self.runtimes.register(msg)
        elif msg.topic.startswith(t.keepalive + "/"):
            if msg.is_request:
                self.runtimes.keepalive(msg)
            return False
        elif msg.topic == t.control or msg.topic.startswith(t.control + "/"):
            to_runtime = msg.topic != t.control
            if not msg.is_request:
                self._runtime_answer(msg, sub if to_runtime else None)
            elif msg.action == "exited":
                self.modules.exited(msg.data, sub if to_runtime else None)
            elif to_runtime:
                return False  # requests to a runtime (ours, or a client's direct ones) are not ours to handle
            elif msg.action == "create":
                self.modules.create(msg.data)
            elif msg.action == "create_batch":
                self.modules.create_batch(msg.data)
            elif msg.action == "delete":
                data = msg.data if isinstance(msg.data, dict) else {}
                if "uuid" not in data:
                    raise P.MissingField("data", "uuid")
                self.modules.delete(data["uuid"])
            else:
                raise P.InvalidArgument("action/type", [msg.action, msg.type])
        return True

    def _runtime_answer(self, msg: P.Message, runtime: str | None) -> None:
        """A runtime's answer to a create: an error means the module did not start."""
        data = msg.data if isinstance(msg.data, dict) else {}
        if msg.action != "create" or data.get("result") != "error":
            return
        raw_details = data.get("details")
        details = raw_details if isinstance(raw_details, dict) else {}
        module = self.fleet.modules.get(details.get("uuid", ""))
        if module is None or module.status != P.ALIVE or (runtime and module.parent != runtime):
            return
        message = str(details.get("error") or details.get("message") or "the runtime refused it")
        module.last_error = message
        self.modules.after_failure(module, f"failed to start: {message}", failed=True, runtime_lost=False)

    # -- reads for the API ------------------------------------------------------------

    def snapshot(self, fn: Callable[[Fleet], Any]) -> Any:
        with self.lock:
            return fn(self.fleet)


def _merge(older: Changes, newer: Changes) -> Changes:
    if not older:
        return newer
    older.runtimes.update(newer.runtimes)
    older.managers.update(newer.managers)
    older.modules.update(newer.modules)
    older.events.extend(newer.events)
    older.settings.update(newer.settings)
    older.handled.extend(newer.handled)
    older.touched.update(newer.touched)
    return older
