"""The audit log: every mutating request and every denied one, written after
the outcome is known (the bazaar wrote its line before), never with a secret."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.db.tables import audit_log
from modrun.db.times import utc_now


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, actor: str, action: str, target: str | None, status: int, ip: str | None) -> None:
        outcome = "ok" if status < 400 else "denied" if status in (401, 403, 429) else "error"
        with self.engine.begin() as conn:
            conn.execute(
                audit_log.insert().values(
                    at=utc_now(),
                    actor=actor,
                    action=action,
                    target=target,
                    outcome=outcome,
                    status=status,
                    ip=ip,
                )
            )

    def query(
        self,
        actor: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[dict]:
        q = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(max(1, min(limit, 1000)))
        for column, value in (("actor", actor), ("action", action), ("outcome", outcome)):
            if value:
                q = q.where(audit_log.c[column] == value)
        if since is not None:
            q = q.where(audit_log.c.at >= since)
        with self.engine.connect() as conn:
            return [
                {
                    "id": r.id,
                    "at": r.at.isoformat(),
                    "actor": r.actor,
                    "action": r.action,
                    "target": r.target,
                    "outcome": r.outcome,
                    "status": r.status,
                    "ip": r.ip,
                }
                for r in conn.execute(q)
            ]
