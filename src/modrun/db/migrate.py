"""Schema migrations (Alembic; scripts ship in ``modrun/db/migrations``).

``modrun migrate up | down | status | new`` drive these. ``modrun serve``
migrates a SQLite database by itself (created on first start); on anything
else it refuses an un-migrated or newer schema unless given ``--migrate``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from modrun.db.engine import display, is_sqlite
from modrun.errors import ConfigError

log = logging.getLogger("modrun.db")
# Alembic logs two lines each time it looks at a database and one per step:
# a start says one line when it migrates (ensure_schema) and nothing otherwise
logging.getLogger("alembic").setLevel(logging.WARNING)


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("modrun.db") / "migrations"))
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str
    known: bool  # False: the database was migrated by a newer modrun

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    def pending(self) -> list[str]:
        script = _script()
        if not self.known:
            return []
        revisions = list(script.iterate_revisions(self.head, self.current or "base"))
        return [r.revision for r in reversed(revisions) if r.revision != self.current]


def state(engine: Engine) -> SchemaState:
    script = _script()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    try:
        known = current is None or script.get_revision(current) is not None
    except Exception:
        known = False
    return SchemaState(current, script.get_current_head() or "base", known)


MIGRATION_LOCK = 0x6D6F6472756E  # "modrun": held while a migration runs on PostgreSQL


def _run(engine: Engine, action) -> None:
    config = _config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # orchestrators starting together migrate one at a time
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = conn
        action(config)


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(engine, lambda config: command.upgrade(config, revision))


def downgrade(engine: Engine, revision: str = "-1") -> None:
    _run(engine, lambda config: command.downgrade(config, revision))


def new_revision(message: str) -> Path:
    """Create the next numbered migration script (for modrun developers)."""
    script = _script()
    head = script.get_current_head()
    number = f"{int(head) + 1:04d}" if head and head.isdigit() else "0001"
    slug = "_".join(message.lower().split())[:40]
    rev = command.revision(_config(), message=message, rev_id=number)
    path = Path(rev.path)  # type: ignore[union-attr]
    target = path.with_name(f"{number}_{slug}.py")
    path.rename(target)
    return target


def ensure_schema(engine: Engine, url: str, allow_migrate: bool) -> SchemaState:
    """Make sure the schema fits this modrun, or raise a clear ConfigError."""
    try:
        current = state(engine)
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise ConfigError(f"cannot reach the database {display(url)}: {reason}") from None
    if not current.known:
        raise ConfigError(
            f"database {display(url)} has schema revision {current.current}, newer than this modrun "
            f"knows (latest {current.head}); upgrade modrun or point --db elsewhere"
        )
    if current.up_to_date:
        return current
    if is_sqlite(url) or allow_migrate:
        steps = current.pending()
        upgrade(engine)
        log.info(
            "database %s migrated from %s to %s (%d step%s)",
            display(url),
            current.current or "empty",
            current.head,
            len(steps),
            "" if len(steps) == 1 else "s",
        )
        return state(engine)
    raise ConfigError(
        f"database {display(url)} is at schema revision {current.current or 'none'} but this modrun "
        f"needs {current.head}: run `modrun migrate up --db URL`, or start with --migrate"
    )
