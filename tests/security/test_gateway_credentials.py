"""The gateway never hands a caller's credential to a node, and routes only to
what the orchestrator placed.

A real secured fleet with one real node serving ``hello``, and a rogue: an MQTT
client holding a valid join token that registers as a modrun runtime whose URL
is a recording HTTP server, and claims in its keepalives to serve ``greet``.
It gets none of the admin's calls while it was given nothing. Once the
deployment is scaled so that a replica is placed on it, it does get calls, but
what reaches it carries no ``Authorization``, ``X-API-Key`` or cookie: only a
short-lived assertion for that one runtime, which the real node refuses.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import jwt
import pytest

from control_support import Recorder, bearer, broker_port, deployed, join_as, mqtt_connect, secured_fleet
from modrun.fleet import protocol as P
from support import HELLO_AS, wait_until

pytestmark = pytest.mark.slow


def _rogue_answer(asked: bytes) -> tuple[bytes, str]:
    return (b"x" * (2 << 20) if asked == b"big" else b"Hello from the rogue"), "text/plain"


class RogueRuntime:
    """A join-token holder, joined as a runtime of its own, posing as a modrun
    node: it claims ``greet`` and, once a module is placed on it, claims that
    module's functions too."""

    def __init__(self, port: int, runtime: str, credential: str, url: str) -> None:
        self.uuid = runtime
        self.placed: list[str] = []
        client = mqtt_connect(port, self.uuid, credential)
        assert client is not None
        self.client = client
        client.on_message = self._on_message
        client.subscribe(f"realm/proc/control/{self.uuid}", qos=1)
        data = {
            "type": "runtime",
            "uuid": self.uuid,
            "name": "rogue",
            "runtime_type": "modrun",
            "apis": ["wasm", "wasi", "extism"],
            "metadata": {"url": url},
        }
        client.publish(f"realm/proc/reg/{self.uuid}", json.dumps(P.envelope("create", data)), qos=1)
        self._stop = threading.Event()
        threading.Thread(target=self._keepalive, daemon=True).start()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        doc = json.loads(message.payload)
        if doc.get("type") == "req" and doc.get("action") == "create":
            self.placed.append(doc["data"]["uuid"])

    def _keepalive(self) -> None:
        while not self._stop.is_set():
            functions = [{"name": "greet", "plugin": "hello", "module": None, "path": "/functions/greet"}]
            functions += [
                {"name": "greet", "plugin": "hello", "module": m, "path": "/functions/greet"}
                for m in self.placed
            ]
            data = {
                "type": "runtime",
                "uuid": self.uuid,
                "name": "rogue",
                "apis": ["wasm", "wasi", "extism"],
                "children": [{"uuid": m} for m in self.placed],
                "functions": functions,
                "graphql": ["query.greet"],
            }
            topic = f"realm/proc/keepalive/{self.uuid}"
            self.client.publish(topic, json.dumps(P.envelope("update", data)), qos=1)
            self._stop.wait(0.3)

    def close(self) -> None:
        self._stop.set()
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("gateway")
    secured = secured_fleet(root / "orch", "--gatewayMaxResponse", "1MiB", "--nodeNetworks", "127.0.0.0/8")
    node = secured.node(root / "n1", "n1")
    recorder = Recorder(_rogue_answer)
    admin = secured.admin
    try:
        artifact = deployed(admin, HELLO_AS, "hello")
        runtime, credential = join_as(secured.orch.url, secured.join_env["MODRUN_JOIN_TOKEN"])
        port = broker_port(secured.orch.url, credential)
        rogue = RogueRuntime(port, runtime, credential, recorder.url)
        api = httpx.Client(base_url=secured.orch.url, headers=bearer(admin.token), timeout=30)
        wait_until(lambda: api.get(f"/api/runtimes/{rogue.uuid}/").status_code == 200, what="rogue joined")
        time.sleep(1)  # its claims are in
        yield secured, node, recorder, rogue, api, artifact
    finally:
        recorder.close()
        node.stop()
        secured.stop()


def _call(api: httpx.Client, cookie: bool = False) -> httpx.Response:
    headers = {"cookie": "modrun_session=secret"} if cookie else {}  # beside the admin's bearer token
    return api.post("/functions/greet", content=b"Ada", headers=headers)


def test_a_node_that_claims_what_it_was_not_given_gets_no_calls(fleet):
    _secured, _node, recorder, _rogue, api, _artifact = fleet
    for _ in range(8):
        answer = _call(api)
        assert answer.status_code == 200 and answer.text == "Hello, Ada!"
        assert answer.headers["x-modrun-node"] == "n1"
        assert answer.headers["x-content-type-options"] == "nosniff"
    for _ in range(4):
        answer = api.post("/graphql", json={"query": '{ greet(input: "Ada") }'})
        assert answer.status_code == 200 and answer.headers["x-modrun-node"] == "n1"
    assert recorder.requests == []


def test_a_node_given_a_replica_gets_an_assertion_not_the_callers_credential(fleet):
    secured, node, recorder, rogue, api, artifact = fleet
    secured.admin.deploy(artifact, replicas=2)  # the second replica can only go to the rogue
    wait_until(lambda: rogue.placed, timeout=20, what="a replica placed on the rogue")
    wait_until(lambda: secured.admin.deployment(artifact)["status"] == "complete", timeout=30, what="scaled")
    wait_until(lambda: _call(api).headers.get("x-modrun-node") == "rogue", timeout=10, what="a call to it")
    recorder.requests.clear()
    for _ in range(4):
        _call(api, cookie=True)
    seen = recorder.requests
    assert seen, "the rogue's replica got no calls"
    for headers in seen:
        assert "authorization" not in headers and "x-api-key" not in headers and "cookie" not in headers
        assert secured.admin.token not in json.dumps(headers)
    assertion = seen[0]["x-modrun-assertion"]
    claims = jwt.decode(assertion, options={"verify_signature": False})
    assert claims["aud"] == f"runtime:{rogue.uuid}" and claims["exp"] - claims["iat"] <= 31
    # what it was handed is good for nothing elsewhere: the real node refuses it
    replayed = httpx.post(
        node.url + "/functions/greet", content=b"x", headers={"x-modrun-assertion": assertion}
    )
    assert replayed.status_code == 401, replayed.text
    # an answer beyond --gatewayMaxResponse is not passed on; the real node's are
    answers = [api.post("/functions/greet", content=b"big") for _ in range(6)]
    refused = [a for a in answers if a.status_code == 502]
    assert refused and all("larger than 1048576 bytes" in a.json()["error"] for a in refused)
    assert all(a.text == "Hello, big!" for a in answers if a.status_code != 502)
    secured.admin.deploy(artifact, replicas=1)
    wait_until(lambda: not _rogue_serves(api), timeout=20, what="the rogue's replica gone")
    assert _call(api).text == "Hello, Ada!"


def _rogue_serves(api: httpx.Client) -> bool:
    return any(_call(api).headers.get("x-modrun-node") == "rogue" for _ in range(4))


BAD_URLS = [
    "http://169.254.169.254/latest/meta-data",  # cloud metadata
    "http://10.1.2.3:8080",  # outside --nodeNetworks
    "http://localhost:9",  # a name: what it resolves to later is unchecked
    "file:///etc/passwd",
    "http://user:secret@127.0.0.1:9",
    "http://127.0.0.1:9/?next=elsewhere",
]


def test_a_node_cannot_register_an_address_the_operator_did_not_allow(fleet):
    secured, _node, _recorder, _rogue, api, _artifact = fleet
    token = secured.join_env["MODRUN_JOIN_TOKEN"]
    for url in BAD_URLS:
        runtime, credential = join_as(secured.orch.url, token)
        client = mqtt_connect(broker_port(secured.orch.url, credential), runtime, credential)
        assert client is not None
        data = {"type": "runtime", "uuid": runtime, "name": "probe", "metadata": {"url": url}}
        client.publish(
            f"realm/proc/reg/{runtime}", json.dumps(P.envelope("create", data)), qos=1
        ).wait_for_publish()
        time.sleep(0.5)
        assert api.get(f"/api/runtimes/{runtime}/").status_code == 404, url
        # the same runtime with an address inside the allowed network is taken
        data["metadata"] = {"url": "http://127.0.0.1:9/"}
        client.publish(f"realm/proc/reg/{runtime}", json.dumps(P.envelope("create", data)), qos=1)
        wait_until(lambda: api.get(f"/api/runtimes/{runtime}/").status_code == 200, what="a good address")  # noqa: B023
        assert api.get(f"/api/runtimes/{runtime}/").json()["metadata"]["url"] == "http://127.0.0.1:9"
        client.loop_stop()
        client.disconnect()
