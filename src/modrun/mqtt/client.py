"""A reconnecting MQTT client (paho-mqtt 2) with JSON helpers.

paho runs the network on its own thread and reconnects with backoff; this
wrapper re-subscribes on every (re)connect and tells its owner, so a node can
re-register after a broker restart. Handlers run on paho's thread: they must
only hand work off (to a queue), never block.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho

from modrun.mqtt.url import BrokerAddress

log = logging.getLogger("modrun.mqtt")

Handler = Callable[[str, bytes], None]


class MqttLink:
    def __init__(
        self,
        address: BrokerAddress,
        client_id: str | None = None,
        keepalive: int = 10,
        will: tuple[str, bytes] | None = None,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
    ) -> None:
        self.address = address
        self.keepalive = max(2, keepalive)
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"modrun-{uuid.uuid4().hex[:12]}",
            clean_session=True,
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=5)  # type: ignore[arg-type]  # paho's stub says int; it sleeps any float
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        if address.tls:
            self.client.tls_set()
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1)
        self._subscriptions: dict[str, int] = {}
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self.connected = threading.Event()
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected

    def subscribe(self, topic: str, handler: Handler, qos: int = 1) -> None:
        self._subscriptions[topic] = qos

        def callback(_client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
            try:
                handler(message.topic, bytes(message.payload))
            except Exception:  # a handler must never kill paho's network thread
                log.exception("MQTT handler for %s failed", message.topic)

        self.client.message_callback_add(topic, callback)
        if self.connected.is_set():
            self.client.subscribe(topic, qos)

    def start(self) -> None:
        """Connect in the background; paho retries until the broker answers."""
        self.client.connect_async(self.address.host, self.address.port, keepalive=self.keepalive)
        self.client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def publish(self, topic: str, payload: Any, qos: int = 1, retain: bool = False) -> None:
        data = payload if isinstance(payload, bytes | str) else json.dumps(payload, separators=(",", ":"))
        self.client.publish(topic, data, qos=qos, retain=retain)

    def stop(self, graceful: bool = True) -> None:
        """Disconnect (a graceful disconnect does not fire the Last Will)."""
        try:
            if graceful:
                self.client.disconnect()
        finally:
            self.client.loop_stop()

    # -- paho callbacks (network thread) -------------------------------------

    def _connected(self, client: paho.Client, _u: Any, _flags: Any, reason: Any, _p: Any = None) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.address, reason)
            return
        sock = client.socket()
        if sock is not None:  # small control messages must not wait for Nagle + delayed ACKs (~40 ms a hop)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]  # paho's SocketLike: a TCP socket here
        for topic, qos in self._subscriptions.items():
            client.subscribe(topic, qos)
        self.connected.set()
        log.info("connected to MQTT broker %s", self.address)
        if self._on_connect is not None:
            self._on_connect()

    def _disconnected(self, _c: Any, _u: Any, _flags: Any, reason: Any, _p: Any = None) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was:
            log.warning("lost the MQTT broker %s (%s); reconnecting", self.address, reason)
            if self._on_disconnect is not None:
                self._on_disconnect()
