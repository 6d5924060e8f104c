"""The embedded broker's rules for an external Mosquitto: its password and ACL
files, kept current by the orchestrator (``--mosquittoFiles DIR``).

``DIR/passwd`` holds the orchestrator's user (from ``--mqtt``) and each joined
runtime (its uuid, its credential as password), in Mosquitto's own hash
(``$7$``: PBKDF2-SHA512, 101 rounds, 12-byte salt, as ``mosquitto_passwd``
writes). A runtime's entry is written when it joins, the one moment its
credential is known in the clear, and removed when it is revoked. ``DIR/acl``
gives each runtime exactly what the embedded broker does: its own registration,
keepalive and control topics, and the output and channel topics of the modules
placed on it now; it is written again whenever placements change. After each
write the orchestrator runs ``--mosquittoReload`` (say ``systemctl reload
mosquitto``): Mosquitto reads both files again on SIGHUP, and a revoked
runtime, no longer in the ACL, can neither publish nor receive anything.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import subprocess
import threading
from pathlib import Path

from modrun.control.nodes import NodeCredentials
from modrun.fleet import protocol as P
from modrun.fleet.acl import output_topics, own_topics
from modrun.mqtt.url import BrokerAddress
from modrun.orchestrator.engine import ControlLoop
from modrun.orchestrator.fleet import Fleet
from modrun.storage.private import write_private

log = logging.getLogger("modrun.orchestrator")

ROUNDS = 101
SALT = 12
DEBOUNCE = 0.1


def password_line(username: str, password: str, salt: bytes | None = None) -> str:
    """One ``passwd`` line in Mosquitto 2's format."""
    salt = salt or os.urandom(SALT)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ROUNDS)
    return f"{username}:$7${ROUNDS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def acl_text(realm: str, orchestrator: str, runtimes: dict[str, tuple[list[str], set[str]]]) -> str:
    """The ACL: the orchestrator everything in the realm; each runtime (uuid ->
    (its modules, their channel topics)) its own topics only."""
    topics = P.Topics(realm)
    lines = [f"user {orchestrator}", f"topic readwrite {realm}/#", ""]
    for runtime in sorted(runtimes):
        modules, channels = runtimes[runtime]
        both, publish_only = own_topics(topics, runtime)
        lines.append(f"user {runtime}")
        lines += [f"topic readwrite {topic}" for topic in sorted(both | channels)]
        lines += [f"topic write {topic}" for topic in sorted(publish_only)]
        lines += [
            f"topic write {topic}" for module in sorted(modules) for topic in output_topics(topics, module)
        ]
        lines.append("")
    return "\n".join(lines)


class MosquittoFiles:
    def __init__(
        self,
        directory: Path,
        realm: str,
        broker: BrokerAddress,
        reload: str | None,
        credentials: NodeCredentials,
        control: ControlLoop,
    ) -> None:
        if not broker.username or not broker.password:
            raise ValueError("--mosquittoFiles needs the orchestrator's user and password in --mqtt")
        self.directory = directory
        self.realm = realm
        self.broker = broker
        self.reload = reload
        self.credentials = credentials
        self.control = control
        self._lines: dict[str, str] = {}  # runtime uuid -> its passwd line
        self._own_line = password_line(broker.username, broker.password)
        self._written: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="modrun-mosquitto", daemon=True)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        live = {n["runtime"] for n in self.credentials.list() if n["revoked_at"] is None}
        self._lines = {u: line for u, line in self._read_passwd().items() if u in live}
        self.credentials.on_issue.append(self.issued)
        self.credentials.on_revoke.append(self.revoked)
        self.control.watchers.append(self._wake.set)
        self.write()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(5)

    def _read_passwd(self) -> dict[str, str]:
        path = self.directory / "passwd"
        if not path.exists():
            return {}
        found = {}
        for line in path.read_text().splitlines():
            user, sep, _hash = line.partition(":")
            if sep and user != self.broker.username:
                found[user] = line
        return found

    def issued(self, runtime: str, credential: str) -> None:
        with self._lock:
            self._lines[runtime] = password_line(runtime, credential)
        self.write()  # at once: the node connects right after it joins

    def revoked(self, runtime: str) -> None:
        with self._lock:
            self._lines.pop(runtime, None)
        self.write()

    def _placements(self) -> dict[str, tuple[list[str], set[str]]]:
        def collect(fleet: Fleet) -> dict[str, tuple[list[str], set[str]]]:
            placed: dict[str, tuple[list[str], set[str]]] = {}
            for module in fleet.modules.values():
                if module.parent and module.status in (P.ALIVE, P.QUEUED, P.EXITING):
                    entry = placed.setdefault(module.parent, ([], set()))
                    entry[0].append(module.uuid)
                    entry[1].update(c["topic"] for c in module.channels if "topic" in c)
            return placed

        return self.control.snapshot(collect)

    def write(self) -> None:
        """Both files as they should be now; Mosquitto told when they changed."""
        with self._lock:
            placed = self._placements()
            runtimes = {u: placed.get(u, ([], set())) for u in self._lines}
            passwd = "\n".join([self._own_line, *sorted(self._lines.values())])
            acl = acl_text(self.realm, str(self.broker.username), runtimes)
            if self._written == (passwd, acl):
                return
            # whole files (Mosquitto never reads half of one), readable by the owner and
            # its group (give the directory Mosquitto's group), nobody else
            write_private(self.directory / "passwd", passwd + "\n", mode=0o640)
            write_private(self.directory / "acl", acl, mode=0o640)
            self._written = (passwd, acl)
        self._reload()

    def _reload(self) -> None:
        if not self.reload:
            return
        try:
            done = subprocess.run(self.reload, shell=True, capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            log.error("--mosquittoReload %r did not finish in 30 s", self.reload)
            return
        if done.returncode != 0:
            log.error("--mosquittoReload %r failed: %s", self.reload, done.stderr.decode(errors="replace"))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            self._stop.wait(DEBOUNCE)  # a burst of placements is one write
            try:
                self.write()
            except Exception:  # the loop must outlive one bad write
                log.exception("writing the Mosquitto files failed")
