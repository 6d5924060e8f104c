"""Fleet test parts: a private Mosquitto, real ``modrun orchestrator``
processes, and a raw MQTT client that behaves like a SilverLine runtime."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho

from modrun.http.bases import UNREACHED
from support import free_port, modrun_cmd, wait_until


class PrivateMosquitto:
    """``mosquitto -c`` with a temporary config on a free loopback port."""

    def __init__(self, access: Path | None = None) -> None:
        """``access``: a directory with ``passwd`` and ``acl`` files to enforce
        (no anonymous clients); without it anyone may connect."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(binary):
            raise RuntimeError("mosquitto not found: install it (apt-get install mosquitto)")
        self.dir = Path(tempfile.mkdtemp(prefix="modrun-mosquitto-"))
        self.port = free_port()
        config = self.dir / "mosquitto.conf"
        rules = (
            f"allow_anonymous false\npassword_file {access / 'passwd'}\nacl_file {access / 'acl'}\n"
            if access is not None
            else "allow_anonymous true\n"
        )
        if os.geteuid() == 0:  # started as root it would become user mosquitto, who cannot read our files
            rules += "user root\n"
        config.write_text(
            f"listener {self.port} 127.0.0.1\n{rules}persistence false\n"
            "max_queued_messages 100000\nmax_inflight_messages 0\nset_tcp_nodelay true\n"
        )
        self.log = open(self.dir / "log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([binary, "-c", str(config)], stdout=self.log, stderr=self.log)
        wait_until(self._up, timeout=10, what="mosquitto")

    def _up(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class NatsCluster:
    """``size`` real ``nats-server`` processes clustered on free loopback ports,
    MQTT (on JetStream, replicated on every member) on each."""

    def __init__(self, size: int = 3) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not os.path.exists(binary):
            raise RuntimeError("nats-server not found: install it (apt-get install nats-server)")
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="modrun-nats-"))
        self.ports = [free_port() for _ in range(size)]  # MQTT
        routes = [free_port() for _ in range(size)]
        self.procs: list[subprocess.Popen | None] = []
        for i in range(size):
            config = self.dir / f"n{i}.conf"
            config.write_text(
                f"server_name: n{i}\nlisten: 127.0.0.1:{free_port()}\n"
                f"jetstream {{ store_dir: {self.dir / f'js{i}'} }}\n"
                f"cluster {{ name: modrun, listen: 127.0.0.1:{routes[i]}, "
                f"routes: [{', '.join(f'nats-route://127.0.0.1:{r}' for r in routes)}] }}\n"
                f"mqtt {{ listen: 127.0.0.1:{self.ports[i]}, stream_replicas: {size} }}\n"
            )
            self.procs.append(None)
            self.restart(i)
        wait_until(self._ready, timeout=30, what="the NATS cluster's MQTT")

    def restart(self, member: int) -> None:
        """Start member ``member`` (again): it rejoins the cluster with its own store."""
        with open(self.dir / f"n{member}.log", "ab") as log:  # the child keeps its own copy of the fd
            config = str(self.dir / f"n{member}.conf")
            self.procs[member] = subprocess.Popen([self.binary, "-c", config], stdout=log, stderr=log)

    def _ready(self) -> bool:
        """Every member takes an MQTT session (JetStream has a leader)."""
        for port in self.ports:
            client = paho.Client(
                paho.CallbackAPIVersion.VERSION2, client_id=f"probe-{uuidlib.uuid4().hex[:6]}"
            )
            try:
                client.connect("127.0.0.1", port, keepalive=5)
            except OSError:
                return False
            client.loop_start()
            deadline = time.monotonic() + 10
            while not client.is_connected() and time.monotonic() < deadline:
                time.sleep(0.05)
            ok = client.is_connected()
            client.disconnect()
            client.loop_stop()
            if not ok:
                return False
        return True

    @property
    def url(self) -> str:
        return "mqtt://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def kill(self, member: int) -> None:
        proc = self.procs[member]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.procs[member] = None

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class OrchestratorProcess:
    """A real ``modrun orchestrator`` on free ports; an open fleet (``--auth
    none``) unless ``auth`` says otherwise."""

    def __init__(
        self,
        storage: Path,
        *extra: str,
        broker_port: int | None = None,
        port: int | None = None,
        env: dict[str, str] | None = None,
        auth: str = "none",
    ):
        self.env = {**os.environ, **(env or {})}
        self.storage = storage
        self.port = port or free_port()
        self.broker_port = broker_port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            "orchestrator",
            "--port",
            str(self.port),
            "--storagePath",
            str(storage),
            "--brokerPort",
            str(self.broker_port),
            "--auth",
            auth,
            *extra,
        ]
        self.log_path = storage / f"orchestrator-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> OrchestratorProcess:
        self.storage.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(modrun_cmd(*self.args), stdout=out, stderr=out, env=self.env)

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"orchestrator exited early:\n{self.log()}")
            try:
                return httpx.get(self.url + "/health", timeout=1).json()["status"] == "ok"
            except (httpx.HTTPError, ValueError, KeyError):
                return False

        wait_until(up, timeout=30, what="orchestrator")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def role(self) -> str | None:
        """``leader``, ``follower`` or ``gateway`` as its /health says (None: not answering)."""
        try:
            return httpx.get(self.url + "/health", timeout=2).json().get("role")
        except (httpx.HTTPError, ValueError):
            return None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> OrchestratorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def broker_member(log: str) -> int:
    """The port of the broker member a process last connected to (from its log)."""
    line = log.rsplit("connected to MQTT broker", 1)[1].split("\n", 1)[0]
    return int(line.rsplit("(", 1)[1].split(")")[0].rsplit(":", 1)[1])


class CallLoad:
    """``clients`` threads calling ``POST {url}{path}`` until stopped, recording
    (monotonic time, status) of every call (0: no answer at all). ``url`` may
    list several gateways (``http://a,http://b``): a call goes to the next one
    only when one cannot be reached at all (nothing was sent), and each call
    tries them in order again, so a gateway that comes back gets its calls back."""

    def __init__(
        self, url: str, path: str, clients: int = 4, body: bytes = b"x", headers: dict | None = None
    ) -> None:
        self.url, self.path, self.body, self.headers = url, path, body, headers or {}
        self.results: list[tuple[float, int]] = []
        self.failures: list[tuple[float, float, str]] = []  # (answered, sent, what) of each failed call
        self._stop = threading.Event()
        self.workers = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        urls = [u.rstrip("/") for u in self.url.split(",")]
        with httpx.Client(timeout=30, headers=self.headers) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                status, why = 0, "unreached"
                for base in urls:  # in order every time, as a load balancer that checks its targets
                    try:
                        answer = client.post(base + self.path, content=self.body)
                        status, why = answer.status_code, answer.text[:200]
                    except UNREACHED:
                        continue
                    except httpx.HTTPError as exc:
                        why = f"{type(exc).__name__} from {base}"
                    break
                self.results.append((time.monotonic(), status))
                if status != 200:
                    self.failures.append((time.monotonic(), started, why))

    def __enter__(self) -> CallLoad:
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self.workers:
            worker.join()

    def failed(self, since: float = 0.0) -> list[int]:
        return [s for t, s in self.results if t >= since and s != 200]


def envelope(action: str, data: Any, kind: str = "req") -> dict:
    return {"object_id": str(uuidlib.uuid4()), "action": action, "type": kind, "data": data}


class RawClient:
    """A paho client recording every message on the topics it subscribes to."""

    def __init__(
        self,
        port: int,
        client_id: str | None = None,
        will: tuple[str, dict] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=client_id or uuidlib.uuid4().hex
        )
        if auth is not None:  # a secured fleet's broker: (runtime uuid, its credential)
            self.client.username_pw_set(*auth)
        if will:
            self.client.will_set(will[0], json.dumps(will[1]), qos=1)
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.seen: list[tuple[str, Any]] = []
        self.client.on_message = lambda _c, _u, m: self.inbox.put((m.topic, m.payload))
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()

    def subscribe(self, *topics: str) -> RawClient:
        for topic in topics:
            result, _mid = self.client.subscribe(topic, qos=1)
            assert result == paho.MQTT_ERR_SUCCESS
        time.sleep(0.2)  # let the SUBACK land before anything is published
        return self

    def publish(self, topic: str, payload: Any) -> None:
        data = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        self.client.publish(topic, data, qos=1).wait_for_publish(5)

    def _drain(self) -> None:
        while True:
            try:
                topic, raw = self.inbox.get_nowait()
            except queue.Empty:
                return
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
            self.seen.append((topic, value))

    def wait_for(self, predicate, timeout: float = 10, what: str = "message") -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        checked = 0
        while time.monotonic() < deadline:
            self._drain()
            for topic, value in self.seen[checked:]:
                if predicate(topic, value):
                    return topic, value
            checked = len(self.seen)
            time.sleep(0.01)
        raise AssertionError(f"no {what} within {timeout}s; got {self.seen[-10:]}")

    def wait_exited(self, module: str, timeout: float = 10) -> dict:
        """The ``exited`` report of ``module`` (subscribe to ``{realm}/proc/control/#``
        first: a node reports on its own topic)."""
        _, message = self.wait_for(
            lambda _t, v: (
                isinstance(v, dict) and v.get("action") == "exited" and v["data"].get("uuid") == module
            ),
            timeout,
            what=f"exited of {module}",
        )
        return message

    def messages(self, topic_prefix: str) -> list[Any]:
        self._drain()
        return [v for t, v in self.seen if t.startswith(topic_prefix)]

    def kill(self) -> None:
        """Drop the connection without DISCONNECT: the broker sends the Last Will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class RawRuntime(RawClient):
    """Registers like a SilverLine runtime and records what it is sent."""

    def __init__(
        self,
        port: int,
        realm: str = "realm",
        name: str = "rt",
        max_nmodules: int = 0,
        apis: list[str] | None = None,
        runtime_type: str = "linux",
        kind: str = "req",
        auth: tuple[str, str] | None = None,  # joined: (its uuid, its credential)
    ) -> None:
        self.uuid = auth[0] if auth is not None else str(uuidlib.uuid4())
        self.realm = realm
        self.name = name
        self.reg_topic = f"{realm}/proc/reg/{self.uuid}"
        super().__init__(
            port,
            client_id=f"rt-{self.uuid}",
            will=(self.reg_topic, envelope("delete", {"type": "runtime", "uuid": self.uuid})),
            auth=auth,
        )
        self.subscribe(f"{realm}/proc/control/{self.uuid}", self.reg_topic)
        self.data = {
            "type": "runtime",
            "uuid": self.uuid,
            "name": name,
            "runtime_type": runtime_type,
            "max_nmodules": max_nmodules,
            "apis": apis or ["wasm", "wasi"],
        }
        self.kind = kind

    def register(self) -> dict:
        request = envelope("create", self.data, self.kind)
        self.publish(self.reg_topic, request)
        reply_type = "resp" if self.kind == "req" else "arts_resp"
        _, reply = self.wait_for(
            lambda t, v: (
                t == self.reg_topic
                and isinstance(v, dict)
                and v.get("type") == reply_type
                and v.get("object_id") == request["object_id"]
            ),
            what="registration reply",
        )
        return reply

    def keepalive(self, children: list[dict] | None = None, **extra: Any) -> None:
        data = {
            "type": "runtime",
            "uuid": self.uuid,
            "name": self.name,
            "apis": self.data["apis"],
            "children": children or [],
            **extra,
        }
        self.publish(f"{self.realm}/proc/keepalive/{self.uuid}", envelope("update", data))

    def creates(self) -> list[dict]:
        return [
            v["data"]
            for v in self.messages(f"{self.realm}/proc/control/{self.uuid}")
            if isinstance(v, dict) and v.get("action") == "create" and v.get("type") == "req"
        ]

    def deletes(self) -> list[dict]:
        return [
            v["data"]
            for v in self.messages(f"{self.realm}/proc/control/{self.uuid}")
            if isinstance(v, dict) and v.get("action") == "delete" and v.get("type") == "req"
        ]

    def exited(self, module: str, **data: Any) -> None:
        self.publish(
            f"{self.realm}/proc/control", envelope("exited", {"type": "module", "uuid": module, **data})
        )
