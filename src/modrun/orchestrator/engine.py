"""The control loop: one thread owns the fleet state.

MQTT messages and API requests are queued to it. It takes them in batches
(up to ``BATCH`` at a time), applies each one, checks liveness and the queue,
writes everything the batch changed in one transaction, and only then
publishes the batch's messages and answers the API callers. A payload that
breaks a handler gets an error message on the log topic; the loop never dies.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from modrun.fleet import protocol as P
from modrun.orchestrator.fleet import Fleet
from modrun.orchestrator.lag import LagWindow
from modrun.orchestrator.modules import FileLookup, ModuleControl
from modrun.orchestrator.node_urls import Network
from modrun.orchestrator.runtimes import RuntimeControl
from modrun.orchestrator.scheduler import Policy
from modrun.orchestrator.store import Changes, FleetStore

log = logging.getLogger("modrun.orchestrator")

BATCH = 2000
POLICY_KEY = "scheduler"

Publish = Callable[[str, Any], None]


JUDGE_BACKLOG = 500
"""Messages waiting above which the loop does not declare silent runtimes dead."""


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
    ) -> None:
        runtimes, managers, modules, settings = store.load()
        self.store = store
        self.topics = topics
        self.policy = policy
        self.policy.restore(settings.get(POLICY_KEY) or {})
        self._policy_state = policy.state()
        self.fleet = Fleet(topics, runtimes, managers, modules)
        self.modules = ModuleControl(self.fleet, policy, lookup_file)
        self.runtimes = RuntimeControl(self.fleet, self.modules, ka_interval, ka_timeout, node_networks)
        self.publish = publish
        self.tick = min(0.1, ka_interval / 10)
        self.delete_timeout = max(10.0, 3 * ka_interval)
        self.lock = threading.RLock()
        self.lag = LagWindow()  # arrival on MQTT to handling
        self._position = time.monotonic()  # arrival of the newest message handled
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._unsaved = Changes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modrun-control", daemon=True)
        self.handled = 0
        self.watchers: list[Callable[[], None]] = []  # told (on the control thread) when the fleet changed

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
        the batch is committed (so what it returns is durable)."""
        future: Future = Future()
        self._inbox.put((fn, args, future))
        return future

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
            try:
                self._step(batch)
            except Exception:  # never let the control thread die
                log.exception("control loop step failed")

    def _step(self, batch: list) -> None:
        answers: list[tuple[Future, Any, BaseException | None]] = []
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
                    self.lag.record(time.monotonic() - arrived)
                    self.runtimes.arrived = self._position = arrived
                    try:
                        self._handle(topic, payload)
                    finally:
                        self.runtimes.arrived = None
            # deaths are judged where the loop is: while messages wait, as of the
            # newest one handled, so a loop that runs behind never declares a
            # runtime dead whose keepalive is waiting in the inbox; far behind (a
            # burst), silence is not judged at all: keepalives may be stuck ahead
            # of the inbox, in the broker or the socket (Last Wills still count)
            backlog = self._inbox.qsize()
            if backlog <= JUDGE_BACKLOG:
                self.runtimes.check_liveness(self._position if backlog else None)
            self.modules.confirm_stale_deletes(self.delete_timeout)
            self.modules.place_queued()
            state = self.policy.state()
            if state != self._policy_state:
                self._policy_state = state
                self.fleet.changes.settings[POLICY_KEY] = state
            changes, outbox = self.fleet.take()
            changed = self.fleet.version != version
        self._save(changes)
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

    def _save(self, changes: Changes) -> None:
        pending = _merge(self._unsaved, changes)
        try:
            self.store.save(pending)
        except Exception as exc:
            log.error("cannot write fleet state (%s); keeping it to retry with the next batch", exc)
            self._unsaved = pending
        else:
            self._unsaved = Changes()

    def _handle(self, topic: str, payload: bytes) -> None:
        try:
            msg = P.decode(topic, payload)
            self._dispatch(msg)
        except P.ProtocolError as exc:
            log.warning("refused message on %s: %s %s", topic, exc.desc, exc.data)
            self.fleet.error(exc)
        except Exception as exc:
            log.exception("message on %s broke a handler", topic)
            self.fleet.error(P.ProtocolError("internal error", f"{type(exc).__name__}: {exc}"))

    def _dispatch(self, msg: P.Message) -> None:
        t = self.topics
        sub = msg.topic.rsplit("/", 1)[-1]
        if msg.topic.startswith(t.reg + "/"):
            if msg.is_request:
                self.runtimes.register(msg)
        elif msg.topic.startswith(t.keepalive + "/"):
            if msg.is_request:
                self.runtimes.keepalive(msg)
        elif msg.topic == t.control or msg.topic.startswith(t.control + "/"):
            to_runtime = msg.topic != t.control
            if not msg.is_request:
                self._runtime_answer(msg, sub if to_runtime else None)
            elif msg.action == "exited":
                self.modules.exited(msg.data, sub if to_runtime else None)
            elif to_runtime:
                return  # requests to a runtime (ours, or a client's direct ones) are not ours to handle
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
    return older
