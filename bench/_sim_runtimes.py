"""Simulated runtimes for bench_scale.py: one process hosting COUNT of them,
each its own MQTT client (paho, its own thread), behaving as a node does on
the wire: it registers (with a Last Will), answers every create and delete on
its control topic, and sends a keepalive listing its children every second.

    python bench/_sim_runtimes.py PORT COUNT PREFIX

On stdin: ``kill N`` drops runtime N's connection without a goodbye (its Last
Will fires), ``stats`` prints one JSON line of counts, ``created`` the
modules a create arrived for. Prints ``ready`` once
every runtime's registration was answered.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid

import paho.mqtt.client as paho

REALM = "realm"
KEEPALIVE = 1.0


def envelope(action: str, data: object, kind: str = "req", object_id: str | None = None) -> str:
    doc = {"object_id": object_id or str(uuid.uuid4()), "action": action, "type": kind, "data": data}
    return json.dumps(doc)


class Stats:
    def __init__(self) -> None:
        self.counts = {"creates": 0, "deletes": 0, "keepalives": 0}
        self.created: set[str] = set()  # distinct modules a create arrived for
        self._lock = threading.Lock()

    def add(self, what: str, module: str | None = None) -> None:
        with self._lock:
            self.counts[what] += 1
            if module is not None:
                self.created.add(module)

    def report(self) -> dict:
        with self._lock:
            return {**self.counts, "modules": len(self.created)}


class SimRuntime:
    def __init__(self, port: int, name: str, stats: Stats) -> None:
        self.uuid = str(uuid.uuid4())
        self.name = name
        self.children: dict[str, float] = {}
        self.stats = stats
        self.registered = threading.Event()
        self.reg = f"{REALM}/proc/reg/{self.uuid}"
        self.control = f"{REALM}/proc/control/{self.uuid}"
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"sim-{self.uuid}")
        self.client.max_inflight_messages_set(0)
        self.client.will_set(self.reg, envelope("delete", {"type": "runtime", "uuid": self.uuid}), qos=1)
        self.client.on_message = self._message
        self.client.on_connect = self._connected
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def _connected(self, client: paho.Client, *_args: object) -> None:
        client.subscribe([(self.control, 1), (self.reg, 1)])
        data: dict[str, object] = {"type": "runtime", "uuid": self.uuid, "name": self.name}
        data |= {"runtime_type": "sim", "apis": ["wasm", "wasi"]}
        client.publish(self.reg, envelope("create", data), qos=1)

    def _message(self, client: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        try:
            doc = json.loads(message.payload)
        except ValueError:
            return
        if message.topic == self.reg:
            if doc.get("type") == "resp":
                self.registered.set()
            return
        if doc.get("type") != "req":
            return
        module = str((doc.get("data") or {}).get("uuid", ""))
        if doc.get("action") == "create":
            self.children[module] = time.monotonic()
            self.stats.add("creates", module)
        elif doc.get("action") == "delete":
            self.children.pop(module, None)
            self.stats.add("deletes")
        reply = envelope(
            doc["action"], {"result": "ok", "details": {"uuid": module}}, "resp", doc.get("object_id")
        )
        client.publish(self.control, reply, qos=1)

    def keepalive(self) -> None:
        data = {
            "type": "runtime",
            "uuid": self.uuid,
            "name": self.name,
            "apis": ["wasm", "wasi"],
            "children": [{"uuid": m} for m in list(self.children)],
        }
        self.client.publish(f"{REALM}/proc/keepalive/{self.uuid}", envelope("update", data), qos=1)
        self.stats.add("keepalives")

    def kill(self) -> None:
        """Gone without a goodbye: the broker publishes the Last Will."""
        sock = self.client.socket()
        self.client.loop_stop()
        if sock is not None:
            sock.close()


def main() -> int:
    port, count, prefix = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    stats = Stats()
    runtimes = [SimRuntime(port, f"{prefix}-{i}", stats) for i in range(count)]
    for runtime in runtimes:
        runtime.registered.wait(60)
    print("ready", json.dumps([r.uuid for r in runtimes]), flush=True)
    dead: set[int] = set()

    def beat() -> None:
        while True:
            started = time.monotonic()
            for i, runtime in enumerate(runtimes):
                if i not in dead:
                    runtime.keepalive()
                time.sleep(KEEPALIVE / (count + 1) * 0.9)  # spread over the interval, as real nodes are
            time.sleep(max(0.0, KEEPALIVE - (time.monotonic() - started)))

    threading.Thread(target=beat, daemon=True).start()
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["kill"]:
            dead.add(int(words[1]))
            runtimes[int(words[1])].kill()
            print("killed", runtimes[int(words[1])].uuid, flush=True)
        elif words[:1] == ["created"]:
            with stats._lock:
                print("created", json.dumps(sorted(stats.created)), flush=True)
        elif words[:1] == ["stats"]:
            print("stats", json.dumps(stats.report()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
