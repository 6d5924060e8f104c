"""INSERT ... ON CONFLICT DO UPDATE for both databases modrun runs on."""

from __future__ import annotations

import sqlalchemy as sa


def upsert(conn: sa.Connection, table: sa.Table, rows: list[dict], keys: list[str]) -> None:
    """INSERT ... ON CONFLICT DO UPDATE, for SQLite and PostgreSQL alike."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table)
    update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update), rows)
