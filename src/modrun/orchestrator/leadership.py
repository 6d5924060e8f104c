"""Which orchestrator leads the fleet: a lease in PostgreSQL, with a term that fences writes.

One row (``fleet_leader``) says who leads, until when, and in which term. The
leader renews it every ``RENEW`` seconds; a follower takes it when it has
expired (a paused or partitioned leader) or at once when the leader's session
advisory lock is free (a killed leader: PostgreSQL drops the lock with the
connection). Every takeover bumps the term, and every fleet write checks the
term inside its own transaction (``fence``), holding the row share-locked so a
takeover waits for the write to finish: a deposed leader can never write.
Times are the database's clock, so the orchestrators' clocks never matter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from modrun.db.tables import fleet_leader
from modrun.db.times import utc
from modrun.fleet import protocol as P

log = logging.getLogger("modrun.orchestrator")

LEASE = 2.0
"""Seconds a lease lasts without renewal: a paused leader is replaced after this."""
RENEW = 0.5
"""Seconds between renewals (and between a follower's attempts)."""
LEADER_LOCK = 0x6D6F6472756E + 1  # the session advisory lock the leader holds


class NotLeader(P.ProtocolError):
    """Asked of a follower (or of a leader whose term just ended)."""

    kind = "Unavailable"
    status = 503


class Deposed(Exception):
    """The term this orchestrator wrote under is over: another one leads."""


@dataclass(frozen=True)
class LeaderInfo:
    holder: str
    url: str
    term: int
    since: datetime
    live: bool  # the lease has not expired

    def as_dict(self) -> dict:
        return {
            "instance": self.holder,
            "url": self.url,
            "term": self.term,
            "since": self.since.isoformat().replace("+00:00", "Z"),
            "live": self.live,
        }


class Lease:
    def __init__(self, engine: Engine, libpq: str, instance: str, url: str) -> None:
        self.engine = engine
        self.libpq = libpq
        self.instance = instance
        self.url = url
        self._lock: psycopg.Connection | None = None  # the session that takes the advisory lock
        self._holding = False  # it holds it
        self._guard = threading.Lock()  # the campaign and the control loop both let go of it

    def acquire(self) -> int | None:
        """Take the lease if it is free; the new term, or None."""
        free = self._try_lock()
        with self.engine.begin() as conn:
            _ensure_row(conn)
            row = conn.execute(
                sa.text(
                    "UPDATE fleet_leader SET holder = :me, url = :url, term = term + 1, since = now(), "
                    "expires_at = now() + make_interval(secs => :lease) "
                    "WHERE id = 1 AND (expires_at < now() OR :free) RETURNING term"
                ),
                {"me": self.instance, "url": self.url, "lease": LEASE, "free": free},
            ).first()
        if row is None:
            if free:
                self.unlock()
            return None
        return int(row.term)

    def renew(self, term: int) -> bool:
        """Extend the lease of ``term``; False when another term has begun."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.text(
                    "UPDATE fleet_leader SET expires_at = now() + make_interval(secs => :lease) "
                    "WHERE id = 1 AND term = :term RETURNING term"
                ),
                {"lease": LEASE, "term": term},
            ).first()
        if row is not None and not self._holding:
            self._try_lock()  # taken over by expiry: hold the lock too, so a crash frees it at once
        return row is not None

    def release(self, term: int) -> None:
        """Give the lease up now (a clean stop): a follower need not wait for it to expire."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE fleet_leader SET expires_at = now() - interval '1 second' WHERE term = :t"),
                {"t": term},
            )
        self.unlock()

    def current(self) -> LeaderInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(fleet_leader, (fleet_leader.c.expires_at > sa.func.now()).label("live")).where(
                    fleet_leader.c.id == 1
                )
            ).first()
        if row is None or not row.holder:
            return None
        return LeaderInfo(row.holder, row.url, int(row.term), utc(row.since), bool(row.live))

    @staticmethod
    def fence(conn: Connection, term: int) -> None:
        """Inside a write transaction: go on only while ``term`` leads (the row
        stays share-locked until commit, so no takeover slips in between)."""
        row = conn.execute(sa.text("SELECT term FROM fleet_leader WHERE id = 1 FOR SHARE")).first()
        if row is None or int(row.term) != term:
            raise Deposed(f"term {term} is over (now {row.term if row else 'none'})")

    # -- the advisory lock ------------------------------------------------------------

    def _try_lock(self) -> bool:
        """True when this instance holds the leader's advisory lock (it was free)."""
        with self._guard:
            return self._try_lock_held()

    def _try_lock_held(self) -> bool:
        try:
            if self._lock is None or self._lock.closed:
                self._lock = psycopg.connect(self.libpq, autocommit=True, connect_timeout=5)
            row = self._lock.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
        except psycopg.Error as exc:
            log.warning("leader lock: %s", exc)
            self._close()
            return False
        self._holding = bool(row and row[0])  # not free: the session stays open for the next try
        return self._holding

    def unlock(self) -> None:
        with self._guard:
            self._close()

    def _close(self) -> None:
        self._holding = False
        if self._lock is not None:
            try:
                self._lock.close()  # the session's advisory locks go with it
            except psycopg.Error:
                pass
            self._lock = None


def _ensure_row(conn: Connection) -> None:
    exists = conn.execute(sa.select(fleet_leader.c.id).where(fleet_leader.c.id == 1)).first()
    if exists is None:
        conn.execute(
            sa.text(
                "INSERT INTO fleet_leader (id, holder, url, term, since, expires_at) "
                "VALUES (1, '', '', 0, now(), now() - interval '1 second') ON CONFLICT (id) DO NOTHING"
            )
        )


class Campaign:
    """Keeps trying to lead (a candidate) or only watches who does (a gateway),
    telling ``on_lead(term)`` and ``on_follow()`` when that changes."""

    def __init__(
        self,
        lease: Lease,
        on_lead: Callable[[int], None],
        on_follow: Callable[[], None],
        candidate: bool = True,
    ) -> None:
        self.lease = lease
        self.on_lead = on_lead
        self.on_follow = on_follow
        self.candidate = candidate
        self.term: int | None = None
        self.leader: LeaderInfo | None = None  # as last read
        self.led_since: float | None = None  # time.time() this instance took the lease
        self._trouble_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modrun-campaign", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        term = self.term
        if term is not None:
            self.term = None
            try:
                self.lease.release(term)
            except Exception as exc:  # the lease expires on its own
                log.warning("could not release the lease: %s", exc)
        self.lease.unlock()

    def deposed(self, term: int) -> None:
        """The control loop found ``term`` over when it wrote."""
        if self.term == term:
            self.term = None
            self.lease.unlock()
            log.warning("term %d is over: following", term)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._round()
                self._trouble_since = None
            except Exception as exc:
                self._trouble(exc)
            self._stop.wait(max(0.0, RENEW - (time.monotonic() - started)))

    def _round(self) -> None:
        term = self.term
        if term is not None:
            if not self.lease.renew(term):
                self.deposed(term)
                self.on_follow()
        elif self.candidate:
            term = self.lease.acquire()
            if term is not None:
                self.term, self.led_since = term, time.time()
                log.info("leading the fleet (term %d)", term)
                self.on_lead(term)
        self.leader = self.lease.current()

    def _trouble(self, exc: Exception) -> None:
        """The database does not answer: a leader that cannot renew for a whole
        lease steps down (another may have taken over meanwhile)."""
        now = time.monotonic()
        if self._trouble_since is None:
            self._trouble_since = now
            log.warning("leadership: database trouble: %s", exc)
        term = self.term
        if term is not None and now - self._trouble_since > LEASE:
            self.deposed(term)
            self.on_follow()
