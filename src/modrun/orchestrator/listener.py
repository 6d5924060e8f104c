"""A follower's ear on the database: LISTEN for the rows each leader commit changed.

After every (re)connection it asks for a full reload, since notifications
sent while it was away are gone.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

import psycopg

from modrun.orchestrator.engine import Refresh
from modrun.orchestrator.store import NOTIFY_CHANNEL

log = logging.getLogger("modrun.orchestrator")


class ChangeListener:
    def __init__(self, libpq: str, deliver: Callable[[Refresh], None]) -> None:
        self.libpq = libpq
        self.deliver = deliver
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modrun-listen", daemon=True)
        self.listening = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.libpq, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.listening.set()
                    self.deliver(Refresh())  # whatever was written before we listened
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self.deliver(_parse(note.payload))
            except psycopg.Error as exc:
                self.listening.clear()
                log.warning("fleet change notifications: %s; reconnecting", exc)
                self._stop.wait(0.5)


def _parse(payload: str) -> Refresh:
    try:
        data = json.loads(payload)
    except ValueError:
        return Refresh()
    if not isinstance(data, dict) or data.get("all"):
        return Refresh()
    return Refresh(tuple(data.get("r") or ()), tuple(data.get("m") or ()))
