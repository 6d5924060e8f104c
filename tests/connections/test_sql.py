"""sql_query / sql_execute on real PostgreSQL and MariaDB."""

from __future__ import annotations

import pytest

from apps import envelope, make_app
from support import ModrunServer

DDL = {
    "postgresql": "CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " price NUMERIC(8,2), seen TIMESTAMPTZ, ok BOOLEAN)",
    "mysql": "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL UNIQUE,"
    " price DECIMAL(8,2), seen DATETIME, ok BOOLEAN)",
}
INSERT = {
    "postgresql": "INSERT INTO items (name, price, seen, ok) VALUES ($1, $2, $3, $4)",
    "mysql": "INSERT INTO items (name, price, seen, ok) VALUES (?, ?, ?, ?)",
}
SELECT = {
    "postgresql": "SELECT name, price, ok FROM items WHERE price > $1 AND name <> '$1 literal %' ORDER BY id",
    "mysql": "SELECT name, price, ok FROM items WHERE price > ? AND name <> '? literal %' ORDER BY id",
}


@pytest.fixture(params=["postgresql", "mysql"])
def db(request, app_dir, storage, bridge_wasm):
    dialect = request.param
    server_db = request.getfixturevalue("postgres" if dialect == "postgresql" else "mariadb")
    make_app(app_dir, bridge_wasm, {"connections": {"db": {"type": dialect, "connString": server_db.dsn}}})
    with ModrunServer(app_dir, storage, "--noreload") as server, server.client() as c:
        envelope(c, "sqlExec", {"connection": "db", "statement": "DROP TABLE IF EXISTS items"})
        assert "error" not in envelope(c, "sqlExec", {"connection": "db", "statement": DDL[dialect]})
        yield dialect, c


def test_bound_parameters_rows_and_types(db):
    dialect, c = db
    rows = [
        ["apple", 1.5, "2026-01-02T03:04:05", True],
        ["pear; DROP TABLE items; --", 2.25, None, False],
        ["o'brien ? $1", 0.5, None, None],
    ]
    for row in rows:
        doc = envelope(c, "sqlExec", {"connection": "db", "statement": INSERT[dialect], "params": row})
        assert doc["result"]["rowsAffected"] == 1, doc
    doc = envelope(c, "sqlQuery", {"connection": "db", "statement": SELECT[dialect], "params": [1]})
    result = doc["result"]
    assert [r["name"] for r in result] == ["apple", "pear; DROP TABLE items; --"]
    assert result[0]["price"] == 1.5 and result[1]["price"] == 2.25
    assert bool(result[0]["ok"]) is True and bool(result[1]["ok"]) is False
    everything = envelope(c, "sqlQuery", {"connection": "db", "statement": "SELECT count(*) AS n FROM items"})
    assert everything["result"] == [{"n": 3}]


def test_failed_statement_is_an_error_and_rolls_back(db):
    dialect, c = db
    envelope(
        c, "sqlExec", {"connection": "db", "statement": INSERT[dialect], "params": ["dup", 1, None, True]}
    )
    doc = envelope(
        c, "sqlExec", {"connection": "db", "statement": INSERT[dialect], "params": ["dup", 2, None, True]}
    )
    assert doc["error"].startswith(f"{dialect} db: ")
    assert "dup" in doc["error"] or "unique" in doc["error"].lower() or "duplicate" in doc["error"].lower()
    # the connection is usable again and nothing half-applied
    doc = envelope(c, "sqlQuery", {"connection": "db", "statement": "SELECT price FROM items"})
    assert doc["result"] == [{"price": 1}]


def test_bad_requests_are_clear(db):
    dialect, c = db
    assert envelope(c, "sqlQuery", {"connection": "nope", "statement": "SELECT 1"})["error"] == (
        "no SQL connection named 'nope' (manifest has: db)"
    )
    placeholder = "$2" if dialect == "postgresql" else "?"
    doc = envelope(c, "sqlQuery", {"connection": "db", "statement": f"SELECT {placeholder}", "params": []})
    assert "params" in doc["error"]
    assert envelope(c, "sqlQuery", {"connection": "db"})["error"] == 'request needs "statement"'
    assert envelope(c, "sqlQuery", "not json")["error"].startswith("request is not JSON")
