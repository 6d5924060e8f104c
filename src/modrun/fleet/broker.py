"""The embedded broker: amqtt on its own event-loop thread.

Only the laptop default. Fleets use an existing broker (Mosquitto, EMQX)
through ``--mqtt``; amqtt carries about a thousand QoS 1 messages a second,
Mosquitto tens of thousands.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import Future

from modrun.errors import ConfigError
from modrun.fleet.acl import FleetAccess, register, unregister

log = logging.getLogger("modrun.fleet.broker")


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 1883, access: FleetAccess | None = None) -> None:
        self.host = host
        self.port = port
        self.access = access  # a secured fleet: node credentials and per-node topics (modrun.fleet.acl)
        self._access_key = register(access) if access is not None else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker = None
        self._thread: threading.Thread | None = None

    def _config(self) -> dict:
        if self._access_key is None:
            plugins: dict = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
        else:
            plugins = {
                "modrun.fleet.acl.FleetAuthPlugin": {"access": self._access_key},
                "modrun.fleet.acl.FleetTopicPlugin": {"access": self._access_key},
            }
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": plugins,
        }

    def start(self, timeout: float = 10) -> None:
        _check_free(self.host, self.port)
        started: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(started,), name="modrun-broker", daemon=True)
        self._thread.start()
        started.result(timeout)
        log.info("embedded MQTT broker (amqtt) on mqtt://%s:%d", self.host, self.port)

    def _run(self, started: Future[None]) -> None:
        from amqtt.broker import Broker

        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            broker = Broker(self._config(), loop=loop)
            self._broker = broker
            loop.run_until_complete(broker.start())
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        loop.run_forever()
        loop.close()

    def disconnect(self, username: str) -> None:
        """Drop every connection of ``username`` (a revoked runtime); its will is
        published, as for any connection lost, so its modules move at once."""
        loop, broker = self._loop, self._broker
        if loop is None or broker is None or not loop.is_running():
            return

        async def drop() -> int:
            dropped = 0
            for session, handler in list(broker._sessions.values()):  # amqtt has no public way
                if session.username == username and session.transitions.is_connected():
                    await handler.handle_connection_closed()
                    dropped += 1
            return dropped

        try:
            dropped = asyncio.run_coroutine_threadsafe(drop(), loop).result(5)
        except Exception as exc:
            log.warning("could not drop the MQTT connections of %s: %s", username, exc)
            return
        log.info("dropped %d MQTT connection(s) of %s", dropped, username)

    def stop(self) -> None:
        loop, broker = self._loop, self._broker
        if loop is None or broker is None or not loop.is_running():
            return
        try:
            asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(5)
        except Exception as exc:  # a broker that will not stop must not block shutdown
            log.warning("embedded broker shutdown: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        if self._access_key is not None:
            unregister(self._access_key)


def _check_free(host: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot start the embedded MQTT broker on {host}:{port} ({exc.strerror}); "
                "use --brokerPort for another port, or --mqtt mqtt://host:port for an existing broker"
            ) from None
