"""Helpers for control-plane tests: a real orchestrator, logins, users."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt

from fleet_support import OrchestratorProcess
from modrun.client import Client
from support import ModrunServer

ADMIN_PASSWORD = "correct horse battery"


def basic(login: str, password: str) -> dict:
    return {"authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def login(api: httpx.Client, name: str, password: str) -> dict:
    r = api.get("/user/login", headers=basic(name, password))
    assert r.status_code == 200, r.text
    return r.json()


def new_user(api: httpx.Client, admin_token: str, name: str | None = None) -> tuple[str, str]:
    name = name or f"u{uuid.uuid4().hex[:10]}"
    r = api.post(
        "/user/create",
        headers=bearer(admin_token),
        json={"username": name, "email": f"{name}@example.com", "password": "pw-" + name},
    )
    assert r.status_code == 201, r.text
    return r.json()["user_id"], login(api, name, "pw-" + name)["access_token"]


def in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat().replace("+00:00", "Z")


@dataclass
class SecuredFleet:
    """A real orchestrator with --auth basic, its admin signed in, and the
    environment that lets a node join it (a join token)."""

    orch: OrchestratorProcess
    admin: Client
    join_env: dict[str, str]

    def node(self, plugins: Path, name: str, *extra: str, env: dict[str, str] | None = None) -> ModrunServer:
        """A node joined to this fleet, started (its state next to its plugins)."""
        state = plugins.parent / f"{name}-state"
        state.mkdir(parents=True, exist_ok=True)
        plugins.mkdir(parents=True, exist_ok=True)
        args = ("--noreload", "--orchestrator", self.orch.url, "--name", name, *extra)
        return ModrunServer(plugins, state, *args, env={**self.join_env, **(env or {})}).start()

    def stop(self) -> None:
        self.admin.close()
        self.orch.stop()


def secured_fleet(storage: Path, *extra: str) -> SecuredFleet:
    orch = OrchestratorProcess(
        storage, "--keepalive", "1s", *extra, env={"MODRUN_ADMIN_PASSWORD": ADMIN_PASSWORD}, auth="basic"
    ).start()
    admin = Client(orch.url)
    admin.login("admin", ADMIN_PASSWORD)
    return SecuredFleet(orch, admin, {"MODRUN_JOIN_TOKEN": admin.create_node_token("tests")["token"]})


def join_as(url: str, token: str, name: str = "rogue", runtime: str | None = None) -> tuple[str, str]:
    """Exchange a join token for a runtime's credential: (runtime uuid, credential)."""
    runtime = runtime or str(uuid.uuid4())
    made = httpx.post(
        url + "/api/v2/node/join", json={"runtime": runtime, "name": name}, headers=bearer(token)
    )
    assert made.status_code == 201, made.text
    return runtime, made.json()["credential"]


def broker_port(url: str, credential: str) -> int:
    """The port of the fleet's embedded broker, from its config."""
    config = httpx.get(url + "/api/config", headers=bearer(credential)).json()
    return int(config["mqtt"].rsplit(":", 1)[1])


def mqtt_connect(port: int, username: str | None, password: str | None) -> mqtt.Client | None:
    """A raw MQTT client connected to the fleet's broker as ``username``, or None when refused."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}")
    if username is not None:
        client.username_pw_set(username, password)
    outcome: list[bool] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: outcome.append(not reason.is_failure)
    client.on_disconnect = lambda *_a: outcome.append(False)
    try:
        client.connect("127.0.0.1", port, keepalive=10)
    except OSError:
        return None
    client.loop_start()
    deadline = time.monotonic() + 5
    while not outcome and time.monotonic() < deadline:
        time.sleep(0.05)
    if outcome and outcome[0]:
        return client
    client.loop_stop()
    return None


def signed_up(url: str, name: str) -> Client:
    """A stranger who signed up on the orchestrator at ``url``, signed in."""
    client = Client(url)
    client.signup(name, f"{name}@example.com", f"pw-{name}-long")
    client.login(name, f"pw-{name}-long")
    return client


def deployed(client: Client, path: Path, name: str, timeout: float = 40, **deploy: object) -> str:
    """``path`` pushed as artifact ``name`` and deployed until complete; its id."""
    from support import wait_until

    artifact = client.push(path, name=name)["artifact_id"]
    client.deploy(artifact, **{"replicas": 1, **deploy})  # type: ignore[arg-type]
    wait_until(lambda: client.deployment(artifact)["status"] == "complete", timeout=timeout, what=name)
    return artifact


Answer = Callable[[bytes], tuple[bytes, str]]


class Recorder:
    """An HTTP server on a free loopback port that answers every GET and POST with
    ``answer(body)`` (body, content type) and keeps the headers it was sent."""

    def __init__(self, answer: Answer = lambda _body: (b'{"ok": true}', "application/json")) -> None:
        self.requests: list[dict[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                asked = self.rfile.read(int(self.headers.get("content-length") or 0))
                recorder.requests.append({k.lower(): v for k, v in self.headers.items()})
                body, content_type = answer(asked)
                self.send_response(200)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
