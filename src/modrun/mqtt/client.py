"""A reconnecting MQTT client (paho-mqtt 2) with JSON helpers.

paho runs the network on its own thread and reconnects with backoff; this
wrapper re-subscribes on every (re)connect and tells its owner, so a node can
re-register after a broker restart. With a clustered broker (several members
in the address) a lost or refused connection moves to the next member, so a
client is back within paho's first reconnect delay (0.2 s) while any member
lives; the Last Will stays with the session, which the cluster keeps.
Handlers run on paho's thread: they must only hand work off (to a queue),
never block.
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
RESUBSCRIBE_AFTER = 0.5
MATCHED_TOPICS = 20_000
"""Topics whose handlers are remembered (a fleet's topics repeat: one per runtime and kind)."""


class MqttLink:
    def __init__(
        self,
        address: BrokerAddress,
        client_id: str | None = None,
        keepalive: int = 10,
        will: tuple[str, bytes] | Callable[[], tuple[str, bytes]] | None = None,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        persistent: bool = False,
    ) -> None:
        """``persistent``: a session the broker keeps while the client is away
        (its subscriptions, and the QoS 1 messages that arrive meanwhile, which
        it delivers on reconnect); needs a ``client_id`` of its own. ``will``:
        the Last Will (topic, payload), or what makes a new one for every
        connection (so a will a broker cluster publishes late, for a connection
        already replaced, can be told from the current one's)."""
        self.address = address
        self.keepalive = max(2, keepalive)
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"modrun-{uuid.uuid4().hex[:12]}",
            clean_session=not persistent,
        )
        # no limit on QoS 1 messages awaiting their PUBACK: with one, paho scans every
        # queued message on each acknowledgement (a burst of 10,000 creates spent a
        # tenth of the orchestrator's time there); brokers bound what they take anyway
        self.client.max_inflight_messages_set(0)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=5)  # type: ignore[arg-type]  # paho's stub says int; it sleeps any float
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        if address.tls:
            self.client.tls_set()
        self._will = will
        self._set_will()
        self._subscriptions: dict[str, int] = {}
        self._handlers: dict[str, Handler] = {}  # topic filter -> its handler
        self._matched: dict[str, list[Handler]] = {}  # topic -> the handlers of the filters it matches
        self.client.on_message = self._message
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self.connected = threading.Event()
        self._member = 0  # which of the address's members is being tried
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_connect_fail = self._connect_failed
        self.client.on_subscribe = self._subscribed
        self._pending: dict[int, str] = {}  # SUBSCRIBE message id -> topic, until the broker answers

    def subscribe(self, topic: str, handler: Handler, qos: int = 1) -> None:
        self._subscriptions[topic] = qos
        self._handlers[topic] = handler
        self._matched = {}
        if self.connected.is_set():
            self._subscribe(topic, qos)

    def _message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        """Hand a message to the handlers of the filters its topic matches,
        remembered per topic (matching every message against the filters was
        a twentieth of a busy orchestrator's time)."""
        topic = message.topic
        handlers = self._matched.get(topic)
        if handlers is None:
            handlers = [h for f, h in list(self._handlers.items()) if paho.topic_matches_sub(f, topic)]
            if len(self._matched) >= MATCHED_TOPICS:
                self._matched = {}
            self._matched[topic] = handlers
        payload = bytes(message.payload)
        for handler in handlers:
            try:
                handler(topic, payload)
            except Exception:  # a handler must never kill paho's network thread
                log.exception("MQTT handler for %s failed", topic)

    def _subscribe(self, topic: str, qos: int) -> None:
        _result, mid = self.client.subscribe(topic, qos)
        if mid is not None:
            self._pending[mid] = topic

    def _subscribed(self, _c: Any, _u: Any, mid: int, reasons: Any, _p: Any = None) -> None:
        """A broker may refuse a subscription for now (a cluster electing the
        leader its sessions live on answers SUBACK 0x80): ask again shortly,
        until it takes it, as long as the connection lasts."""
        topic = self._pending.pop(mid, None)
        if topic is None or not any(getattr(r, "is_failure", False) for r in reasons):
            return
        log.warning("MQTT broker %s refused the subscription to %s for now; asking again", self.member, topic)
        timer = threading.Timer(RESUBSCRIBE_AFTER, self._resubscribe, (topic,))
        timer.daemon = True
        timer.start()

    def _set_will(self) -> None:
        will = self._will() if callable(self._will) else self._will
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1)

    def _resubscribe(self, topic: str) -> None:
        if self.connected.is_set() and topic in self._subscriptions:
            self._subscribe(topic, self._subscriptions[topic])

    def start(self) -> None:
        """Connect in the background; paho retries until the broker answers."""
        host, port = self.address.members[0]
        self.client.connect_async(host, port, keepalive=self.keepalive)
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

    @property
    def member(self) -> str:
        """The member connected to (or being tried): ``host:port``."""
        host, port = self.address.members[self._member]
        return f"{host}:{port}"

    def _next_member(self) -> None:
        """Try the cluster's next member on the next reconnect (one member: stay)."""
        members = self.address.members
        if len(members) < 2:
            return
        self._member = (self._member + 1) % len(members)
        host, port = members[self._member]
        # paho's host/port setters refuse while paho itself is reconnecting, which is
        # exactly when a cluster's client must move; its reconnect reads these two
        self.client._host, self.client._port = host, port

    def _connect_failed(self, _c: Any, _u: Any) -> None:
        self._next_member()
        self._set_will()

    def _connected(self, client: paho.Client, _u: Any, _flags: Any, reason: Any, _p: Any = None) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.member, reason)
            self._next_member()
            return
        sock = client.socket()
        if sock is not None:  # small control messages must not wait for Nagle + delayed ACKs (~40 ms a hop)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]  # paho's SocketLike: a TCP socket here
        self._pending.clear()  # answers to a lost connection's subscriptions never come
        for topic, qos in self._subscriptions.items():
            self._subscribe(topic, qos)
        self.connected.set()
        log.info("connected to MQTT broker %s (%s)", self.address, self.member)
        if self._on_connect is not None:
            self._on_connect()

    def _disconnected(self, _c: Any, _u: Any, _flags: Any, reason: Any, _p: Any = None) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        lost = self.member
        self._next_member()
        self._set_will()  # read by paho's next CONNECT
        if was:
            log.warning("lost the MQTT broker %s (%s); reconnecting to %s", lost, reason, self.member)
            if self._on_disconnect is not None:
                self._on_disconnect()
