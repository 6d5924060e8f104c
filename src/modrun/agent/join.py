"""``modrun serve --orchestrator URL``: the node as a SilverLine runtime.

It learns the broker and realm from ``GET /api/config`` (``--mqtt``
overrides the broker), registers on ``{realm}/proc/reg/{uuid}`` with a Last
Will that deregisters it, keeps alive with per-module stats, its load and
the functions it serves, and runs the modules it is sent. When the
orchestrator or the broker goes away it keeps serving what it has,
reconnects with backoff and registers again. The runtime uuid is kept in
``--storagePath`` per port, so a node restarted on the same port comes back as
the same runtime, and two nodes sharing a storage path stay two runtimes.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx

from modrun.agent.bundles import PREFIX as BUNDLE_PREFIX
from modrun.agent.bundles import BundleRun
from modrun.agent.credential import JoinRefused, node_credential
from modrun.agent.files import FetchError, FileCache
from modrun.agent.guard import CallAssertions, call_assertions, node_guard
from modrun.agent.host import JoinSettings, NodeHost
from modrun.agent.keepalive import functions_document, graphql_fields, load_document, platform_document
from modrun.agent.modules import Hosted, kind_of
from modrun.agent.output import ship_call_output
from modrun.agent.runners import ModuleRunner, Outlet, runners
from modrun.control.guard import NO_ARTIFACT, CallGuard
from modrun.errors import FunctionNotFound
from modrun.fleet import protocol as P
from modrun.fleet.groups import artifact_of_group
from modrun.http.bases import Bases
from modrun.metrics.procfs import CpuShare
from modrun.mqtt.client import MqttLink
from modrun.mqtt.url import BrokerAddress
from modrun.version import __version__

log = logging.getLogger("modrun.agent")


class FleetAgent:
    def __init__(self, host: NodeHost, settings: JoinSettings) -> None:
        self.host = host
        self.settings = settings
        storage = Path(host.storage_path).expanduser()
        self.uuid = _runtime_id(storage / "fleet" / f"runtime-{host.port}.id")
        self.credential_path = storage / "fleet" / f"runtime-{host.port}.credential"
        self.credential: str | None = None  # this runtime's own, once joined (secured fleets)
        self.name = settings.name or f"{socket.gethostname()}-{host.port}"
        self.url = (settings.url or f"http://{_reachable(host.host)}:{host.port}").rstrip("/")
        self._connection = ""  # names the current MQTT connection's Last Will
        self.orchestrators = Bases(settings.orchestrator)  # several of one fleet: comma-separated
        self.files = FileCache(settings.orchestrator, storage / "fleet" / "files")
        self.guard: CallGuard | None = None  # set once a secured fleet's config is known
        self.assertions: CallAssertions | None = None  # the gateway's call assertions, likewise
        self.hosted: dict[str, Hosted] = {}
        self.realm = "realm"
        self.topics = P.Topics(self.realm)
        self.ka_interval = 5.0
        self.link: MqttLink | None = None
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._cpu = CpuShare()
        outlet = Outlet(self._publish, self._subscribe, lambda: self.topics, self._exited, self.files.secrets)
        self.runners: dict[str, ModuleRunner] = runners(host, outlet)
        self._threads = [
            threading.Thread(target=self._join_then_work, name="modrun-agent", daemon=True),
            threading.Thread(target=self._keepalive_loop, name="modrun-keepalive", daemon=True),
        ]

    @property
    def secured(self) -> bool:
        """Joining with a join token: calls are checked (and refused until the fleet's
        rules are known). Without one the fleet can only be an open one."""
        return self.settings.token is not None

    def artifacts(self, keys: Iterable[str]) -> set[str]:
        """The artifacts providing the functions (names, ``plugin/name`` or GraphQL
        ``operation.field``) a call runs; NO_ARTIFACT (admins only) for the node's
        own plugins and for anything that names no function here: what cannot be
        resolved is refused, never let through."""
        catalog = self.host.plugins.catalog
        by_plugin = {h.plugin: artifact_of_group(h.group) for h in list(self.hosted.values()) if h.plugin}
        found: set[str] = set()
        for key in keys:
            if key.startswith(BUNDLE_PREFIX):  # anything inside a bundle module: its artifact
                hosted = self.hosted.get(key[len(BUNDLE_PREFIX) :].partition("/")[0])
                found.add((artifact_of_group(hosted.group) if hosted else None) or NO_ARTIFACT)
                continue
            operation, dot, field_name = key.partition(".")
            tables = {
                "query": catalog.queries,
                "mutation": catalog.mutations,
                "subscription": catalog.subscriptions,
            }
            if dot and operation in tables:
                fn = tables[operation].get(field_name)
            else:
                try:
                    fn = catalog.resolve(key)[1]
                except FunctionNotFound:
                    fn = None
            found.add((by_plugin.get(fn.plugin) if fn is not None else None) or NO_ARTIFACT)
        return found

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.host.invoker.observers.append(self._ship_call_output)
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Leave the fleet: stop commands, deregister (modules move at once), disconnect."""
        self._stop.set()
        self._wake.set()
        self._work.put(None)
        for hosted in list(self.hosted.values()):
            if hosted.run is not None:
                hosted.run.kill()
        if self.link is not None:
            if self.link.connected.is_set():
                self.link.publish(self.topics.registration(self.uuid), self._deregistration())
                time.sleep(0.1)
            self.link.stop()
        self.files.close()

    def _join_then_work(self) -> None:
        if self.settings.token and not self._exchange_token():
            return
        config = self._fetch_config()
        if config is None:
            return
        self.realm = str(config.get("realm", "realm"))
        self.topics = P.Topics(self.realm)
        auth = config.get("auth")
        if isinstance(auth, dict):
            self.assertions = call_assertions(auth, self.uuid)
            self.guard = node_guard(self.settings.orchestrator, self.credential, auth)
            log.info("the fleet is secured: calls are checked against its control plane")
        elif self.secured:
            log.warning(
                "joined with a join token, but the fleet is open (--auth none): calls are not checked"
            )
            self.settings.token = self.credential = None
        self.ka_interval = float(config.get("ka_interval_sec") or 5.0)
        broker = BrokerAddress.parse(self.settings.mqtt or str(config["mqtt"]))
        if self.credential and not broker.username:
            broker = broker.with_credentials(self.uuid, self.credential)
        self.link = MqttLink(
            broker,
            client_id=f"modrun-node-{self.uuid}",
            keepalive=max(2, int(self.ka_interval * 2)),
            will=self._will,
            on_connect=lambda: self._work.put(("register",)),
        )
        self.link.subscribe(self.topics.runtime_control(self.uuid), self._on_control)
        self.link.subscribe(self.topics.registration(self.uuid), self._on_registration)
        self.link.start()
        log.info(
            "joining the fleet at %s as runtime %s (%s) over %s",
            self.settings.orchestrator,
            self.name,
            self.uuid,
            broker,
        )
        self._work_loop()

    def _exchange_token(self) -> bool:
        """Get this runtime's credential (kept, or exchanged for the join token)."""
        token = self.settings.token
        assert token is not None
        delay = 0.5
        while not self._stop.is_set():
            try:
                self.credential = node_credential(
                    self.settings.orchestrator, token, self.uuid, self.name, self.credential_path
                )
                self.files.authorize(self.credential)
                return True
            except JoinRefused as exc:
                log.error(
                    "orchestrator %s refused to let this node join as runtime %s (%s)",
                    self.settings.orchestrator,
                    self.uuid,
                    exc,
                )
                return False
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                log.warning("orchestrator %s not reachable (%s); retrying", self.settings.orchestrator, exc)
            self._stop.wait(delay)
            delay = min(delay * 2, 10)
        return False

    def _fetch_config(self) -> dict | None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                response = self.orchestrators.request(
                    lambda base: httpx.get(base + "/api/config", headers=self._bearer(), timeout=5)
                )
                if response.status_code == 200:
                    return response.json()
                if response.status_code in (401, 403):
                    log.error(
                        "orchestrator %s refused to let this node join (%d): %s",
                        self.settings.orchestrator,
                        response.status_code,
                        "give a valid join token (--token or MODRUN_JOIN_TOKEN)"
                        if not self.settings.token
                        else f"this runtime's credential was revoked or is unknown there "
                        f"(a new orchestrator: remove {self.credential_path} to join again)",
                    )
                else:
                    log.warning(
                        "orchestrator %s answered %d to /api/config",
                        self.settings.orchestrator,
                        response.status_code,
                    )
            except (httpx.HTTPError, ValueError) as exc:
                log.warning(
                    "orchestrator %s not reachable (%s); retrying in %.1f s",
                    self.settings.orchestrator,
                    exc,
                    delay,
                )
            self._stop.wait(delay)
            delay = min(delay * 2, 10)
        return None

    def _bearer(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.credential}"} if self.credential else {}

    # -- messages ----------------------------------------------------------------------------

    def _on_control(self, topic: str, payload: bytes) -> None:
        self._work.put(("control", topic, payload))

    def _on_registration(self, topic: str, payload: bytes) -> None:
        try:
            msg = P.decode(topic, payload)
        except P.ProtocolError:
            return
        if msg.is_request or not isinstance(msg.data, dict):
            return
        raw_details = msg.data.get("details")
        details = raw_details if isinstance(raw_details, dict) else {}
        if msg.data.get("result") == "ok" and details.get("uuid") == self.uuid:
            interval = details.get("ka_interval_sec")
            if isinstance(interval, int | float) and interval > 0:
                self.ka_interval = float(interval)
            log.info("registered with the orchestrator (keepalive every %gs)", self.ka_interval)
            self._wake.set()
        elif msg.data.get("result") == "error":
            log.error("the orchestrator refused this runtime's registration: %s", details or raw_details)

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            item = self._work.get()
            if item is None:
                return
            try:
                if item[0] == "register":
                    self._register()
                elif item[0] == "control":
                    self._control(item[1], item[2])
                elif item[0] == "exited":
                    self._report_exit(item[1])
            except Exception:  # the agent must keep working whatever one message does
                log.exception("fleet agent: %s failed", item[0])

    def _register(self) -> None:
        data = {
            "type": "runtime",
            "uuid": self.uuid,
            "name": self.name,
            "runtime_type": "modrun",
            "max_nmodules": self.settings.max_modules,
            "apis": self.settings.apis,
            "platform": platform_document(),
            "metadata": {
                "url": self.url,
                "version": __version__,
                "labels": self.settings.labels,
                "connection": self._connection,  # the Last Will that speaks for this runtime now
            },
            "children": [{"uuid": h.uuid} for h in list(self.hosted.values())],
        }
        assert self.link is not None
        self.link.publish(self.topics.registration(self.uuid), P.envelope("create", data))

    def _will(self) -> tuple[str, bytes]:
        """A new Last Will for each connection, naming it."""
        self._connection = uuidlib.uuid4().hex
        will = P.envelope("delete", {**self._deregistration()["data"], "connection": self._connection})
        return self.topics.registration(self.uuid), json.dumps(will).encode()

    def _deregistration(self) -> dict:
        return P.envelope("delete", {"type": "runtime", "uuid": self.uuid, "name": self.name})

    def _control(self, topic: str, payload: bytes) -> None:
        try:
            msg = P.decode(topic, payload)
        except P.ProtocolError as exc:
            log.warning("ignored a control message: %s", exc.desc)
            return
        if not msg.is_request or not isinstance(msg.data, dict):
            return
        if msg.action == "create":
            self._create(msg)
        elif msg.action == "delete":
            self._delete(str(msg.data.get("uuid", "")))

    def _reply(self, msg: P.Message, ok: bool, details: dict) -> None:
        assert self.link is not None
        self.link.publish(self.topics.runtime_control(self.uuid), P.response(msg, details, ok))

    # -- modules ------------------------------------------------------------------------------

    def _create(self, msg: P.Message) -> None:
        data = msg.data
        module_id = str(data.get("uuid") or "")
        name = str(data.get("name") or "module")
        if not module_id:
            self._reply(msg, False, {"error": "no module uuid"})
            return
        if module_id in self.hosted:
            self._reply(msg, True, {"uuid": module_id, "note": "already running"})
            return
        try:
            path, _digest = self.files.get(str(data.get("file", "")), data.get("sha256"))
            group = data.get("group") if isinstance(data.get("group"), str) else None
            hosted = Hosted(module_id, name, kind_of(path.read_bytes(), data), group=group)
            details = self.runners[hosted.kind].start(hosted, path, data)
            self.hosted[module_id] = hosted
        except (FetchError, RuntimeError, ValueError, OSError) as exc:
            log.error("module %s (%s) did not start: %s", name, module_id, exc)
            self._reply(msg, False, {"uuid": module_id, "error": str(exc)})
            return
        log.info("module %s (%s) started: %s", name, module_id, details.get("kind"))
        self._reply(msg, True, details)
        self._wake.set()  # report the new functions now, not at the next keepalive

    def bundle(self, module_id: str) -> BundleRun | None:
        hosted = self.hosted.get(module_id)
        return hosted.run if hosted is not None and isinstance(hosted.run, BundleRun) else None

    def _publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        if self.link is not None:
            self.link.publish(topic, payload, qos=qos)

    def _subscribe(self, topic: str, handler: Callable[[str, bytes], None]) -> None:
        if self.link is not None:
            self.link.subscribe(topic, handler)

    def _exited(self, hosted: Hosted) -> None:
        self._work.put(("exited", hosted))

    def _report_exit(self, hosted: Hosted) -> None:
        result = hosted.run.result if hosted.run else None
        self.hosted.pop(hosted.uuid, None)
        details = result.as_dict() if result else {"exit_code": None, "reason": "deleted", "message": None}
        if hosted.deleting:  # stopped because it was deleted, whether by trap or by exiting on EOF
            details["reason"] = "deleted"
        log.info("module %s (%s) exited: %s", hosted.name, hosted.uuid, details)
        self._publish_exited({"uuid": hosted.uuid, **details})
        self._wake.set()

    def _publish_exited(self, details: dict) -> None:
        """On this runtime's own control topic: the broker lets a node speak only
        there, and the orchestrator takes the runtime from the topic."""
        if self.link is not None:
            self.link.publish(
                self.topics.runtime_control(self.uuid), P.envelope("exited", {"type": "module", **details})
            )

    def _delete(self, module_id: str) -> None:
        hosted = self.hosted.get(module_id)
        if hosted is None:
            # not here (any more): confirm, so the orchestrator does not wait
            self._publish_exited({"uuid": module_id, "reason": "deleted", "exit_code": None})
            return
        hosted.deleting = True
        if not self.runners[hosted.kind].stop(hosted):
            self._report_exit(hosted)

    # -- output of plugin modules ------------------------------------------------------------

    def _ship_call_output(self, plugin: str, function: str, logs: list, error: str | None) -> None:
        link = self.link
        hosted = next((h for h in list(self.hosted.values()) if h.plugin == plugin), None)
        if hosted is not None and link is not None and link.connected.is_set():
            ship_call_output(link.publish, self.topics, hosted, function, logs, error)

    # -- keepalive ---------------------------------------------------------------------------

    def _keepalive_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.ka_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            link = self.link
            if link is None or not link.connected.is_set():
                continue
            try:
                link.publish(self.topics.runtime_keepalive(self.uuid), P.envelope("update", self.keepalive()))
            except Exception:
                log.exception("keepalive failed")

    def keepalive(self) -> dict:
        catalog = self.host.plugins.catalog
        hosted = list(self.hosted.values())
        return {
            "type": "runtime",
            "uuid": self.uuid,
            "name": self.name,
            "apis": self.settings.apis,
            "children": [h.stats(self.host.metrics) for h in hosted],
            "load": load_document(self._cpu, len(hosted)),
            "functions": functions_document(catalog, hosted),
            "graphql": graphql_fields(catalog),
            "url": self.url,
        }


def _runtime_id(path: Path) -> str:
    try:
        value = path.read_text().strip()
        if value:
            return value
    except OSError:
        pass
    value = str(uuidlib.uuid4())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    return value


def _reachable(host: str) -> str:
    return socket.gethostname() if host in ("0.0.0.0", "::", "") else host
