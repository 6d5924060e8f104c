"""Who may use the embedded broker of a secured fleet, and which topics.

The orchestrator connects with a password made at start; a node connects
with its runtime uuid as username and that runtime's own credential as
password (a join token is refused: it is exchanged for the credential first). A node may
publish only its own registration, keepalive and control replies
(``{realm}/proc/reg|keepalive|control/{uuid}``), the stdout/stderr of
modules placed on it and their channel topics; it may subscribe only to its
own control and registration topics and its modules' channels. Anything
else is refused by the broker (a publish is dropped, a subscription fails).
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin

from modrun.fleet import protocol as P

log = logging.getLogger("modrun.fleet.acl")

ORCHESTRATOR_USER = "modrun-orchestrator"

OUTPUT_STREAMS = ("stdout", "stderr")


def own_topics(topics: P.Topics, runtime: str) -> tuple[set[str], set[str]]:
    """A runtime's own topics: those it may publish and subscribe to
    (registration, control), and those it may only publish to (keepalive). The
    one statement of the rule, for the embedded broker and for Mosquitto's ACL."""
    return {topics.registration(runtime), topics.runtime_control(runtime)}, {
        topics.runtime_keepalive(runtime)
    }


def output_topics(topics: P.Topics, module: str) -> list[str]:
    """Where a module placed on a runtime prints (the runtime publishes them)."""
    return [f"{topics.realm}/proc/{stream}/{module}" for stream in OUTPUT_STREAMS]


RuntimeOf = Callable[[str], str | None]  # module uuid -> the runtime it is placed on
ChannelsOf = Callable[[str], set[str]]  # runtime uuid -> channel topics of its modules


class FleetAccess:
    def __init__(
        self,
        realm: str,
        password: str,
        speaks_for: Callable[[str, str], bool],
        runtime_of: RuntimeOf,
        channels_of: ChannelsOf,
    ) -> None:
        self.topics = P.Topics(realm)
        self.password = password
        self.speaks_for = speaks_for  # (credential, runtime uuid) -> the credential is that runtime's
        self.runtime_of = runtime_of
        self.channels_of = channels_of

    def authenticate(self, username: str | None, password: str | None) -> bool:
        if not username or not password:
            return False
        if username == ORCHESTRATOR_USER:
            return hmac.compare_digest(password.encode(), self.password.encode())
        return self.speaks_for(password, username)

    def allowed(self, username: str | None, topic: str, action: str) -> bool:
        if username == ORCHESTRATOR_USER:
            return True
        if not username:
            return False
        own, publish_only = own_topics(self.topics, username)
        if action == Action.PUBLISH:
            if topic in own or topic in publish_only:
                return True
            for stream in OUTPUT_STREAMS:
                prefix = f"{self.topics.realm}/proc/{stream}/"
                if topic.startswith(prefix):
                    return self.runtime_of(topic[len(prefix) :]) == username
        elif topic in own:
            return True
        return topic in self.channels_of(username)


# the broker makes its plugins from class paths; they find their FleetAccess here
_ACCESS: dict[str, FleetAccess] = {}
_ids = itertools.count()


def register(access: FleetAccess) -> str:
    key = f"fleet-{next(_ids)}"
    _ACCESS[key] = access
    return key


def unregister(key: str) -> None:
    _ACCESS.pop(key, None)


class FleetAuthPlugin(BaseAuthPlugin):
    @dataclass
    class Config:
        access: str = ""

    async def authenticate(self, *, session: Any) -> bool | None:
        access = _ACCESS.get(self.context.config.access)
        if access is None:
            return False
        ok = await asyncio.to_thread(access.authenticate, session.username, session.password)
        if not ok:
            log.warning(
                "refused an MQTT connection (client %s, user %r)", session.client_id, session.username
            )
        return ok


class FleetTopicPlugin(BaseTopicPlugin):
    @dataclass
    class Config:
        access: str = ""

    async def topic_filtering(
        self, *, session: Any = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        access = _ACCESS.get(self.context.config.access)
        if access is None or session is None or topic is None or action is None:
            return False
        ok = access.allowed(session.username, topic, str(action))
        if not ok and action != Action.RECEIVE:
            log.warning("refused MQTT %s on %s for %r", action, topic, session.username)
        return ok
