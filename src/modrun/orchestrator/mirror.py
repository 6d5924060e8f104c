"""What a follower keeps while another orchestrator leads.

It hears what the leader hears (the same subscriptions, its own session) and
reads what the leader writes (rows named in each commit's NOTIFY), so its view
of the fleet serves reads and the gateway. Control messages it hears are kept
for ``REPLAY_WINDOW`` seconds: when it takes over, those the old leader never
applied (no row in ``fleet_handled``) are applied then, so a create sent
while the leader died is answered once, by the new one.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from dataclasses import dataclass

from modrun.orchestrator.fleet import Fleet
from modrun.orchestrator.state import Runtime

REPLAY_WINDOW = 30.0
REPLAY_LIMIT = 200_000


def message_key(topic: str, payload: bytes) -> str:
    """The same message heard by every orchestrator has the same key."""
    return hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=16).hexdigest()


@dataclass(frozen=True)
class Heard:
    topic: str
    payload: bytes
    arrived: float  # monotonic

    @property
    def key(self) -> str:
        return message_key(self.topic, self.payload)


class ReplayBuffer:
    def __init__(self, window: float = REPLAY_WINDOW, limit: int = REPLAY_LIMIT) -> None:
        self.window = window
        self._heard: deque[Heard] = deque(maxlen=limit)

    def add(self, topic: str, payload: bytes, arrived: float) -> None:
        self._heard.append(Heard(topic, payload, arrived))

    def take(self) -> list[Heard]:
        """What was heard within the window, oldest first; the buffer is emptied."""
        since = time.monotonic() - self.window
        kept = [h for h in self._heard if h.arrived >= since]
        self._heard.clear()
        return kept

    def __len__(self) -> int:
        return len(self._heard)


REPORTED = ("last_seen", "reported", "load", "load_share", "children", "functions", "graphql")
"""Runtime fields that come from keepalives, not from the database."""


def carry_reports(old: dict[str, Runtime], new: dict[str, Runtime]) -> None:
    """Keep what keepalives told about runtimes across a reload of the rows."""
    for uuid, runtime in new.items():
        before = old.get(uuid)
        if before is not None and runtime.alive:
            for name in REPORTED:
                setattr(runtime, name, getattr(before, name))


def patch(fleet: Fleet, runtimes: dict[str, Runtime], modules: dict) -> None:
    """Put rows the leader wrote into a follower's view."""
    carry_reports(fleet.runtimes, runtimes)
    fleet.runtimes.update(runtimes)
    for module in modules.values():
        fleet.add_module(module)
        fleet.next_index = max(fleet.next_index, module.index + 1)
    fleet.version += 1
    fleet.runtime_epoch += 1
