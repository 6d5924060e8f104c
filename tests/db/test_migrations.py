"""Schema migrations on SQLite and PostgreSQL, through the CLI, and serve's checks."""

from __future__ import annotations

import sqlalchemy as sa

from support import TEXTKIT_C, ModrunServer, run_cli

FLEET_TABLES = (
    "fleet_runtimes",
    "fleet_managers",
    "fleet_modules",
    "fleet_module_events",
    "fleet_files",
    "fleet_settings",
)


CONTROL_TABLES = ("users", "teams", "user_teams", "refresh_tokens", "revoked_tokens", "api_keys", "audit_log")


def _inspected(url: str, look):
    from modrun.db.engine import make_engine

    engine = make_engine(url)
    try:
        return look(sa.inspect(engine))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    return _inspected(url, lambda inspector: set(inspector.get_table_names()))


def _columns(url: str, table: str) -> set[str]:
    return _inspected(url, lambda inspector: {c["name"] for c in inspector.get_columns(table)})


def _down(url: str, expected: str) -> None:
    """One migration down, as `modrun migrate down` does it."""
    from modrun.db import migrate
    from modrun.db.engine import make_engine

    engine = make_engine(url)
    try:
        before = migrate.state(engine).current
        migrate.downgrade(engine, "-1")
        assert f"{before} -> {migrate.state(engine).current}" == expected
    finally:
        engine.dispose()


def _round_trip(db_args: list[str], url: str) -> None:
    status = run_cli("migrate", "status", *db_args)
    assert (
        status.returncode == 1
        and b"pending:  0001, 0002, 0003, 0004, 0005, 0006, 0007, 0008, 0009, 0010, 0011, 0012"
        in status.stdout
    )
    up = run_cli("migrate", "up", *db_args)
    assert up.returncode == 0, up.stderr
    assert {"plugins", "inferences", "model_servers", "model_access", "model_weights"} <= _tables(url)
    assert set(FLEET_TABLES) <= _tables(url)
    assert set(CONTROL_TABLES) <= _tables(url)
    assert run_cli("migrate", "status", *db_args).returncode == 0
    several = {"fleet_leader", "fleet_handled", "login_failures"}
    assert several <= _tables(url) and "deployment_secrets" in _tables(url)
    leader = run_cli("migrate", "down", *db_args)  # one step
    assert leader.returncode == 0 and b"0012 -> 0011" in leader.stdout
    assert not several & _tables(url) and "deployment_secrets" in _tables(url)
    _down(url, "0011 -> 0010")
    assert "deployment_secrets" not in _tables(url) and "node_credentials" in _tables(url)
    _down(url, "0010 -> 0009")
    assert "node_credentials" not in _tables(url) and "family" in _columns(url, "refresh_tokens")
    # each further step down through the same function the CLI calls (a CLI start costs ~1.5 s)
    _down(url, "0009 -> 0008")
    assert "family" not in _columns(url, "refresh_tokens")
    _down(url, "0008 -> 0007")
    _down(url, "0007 -> 0006")
    assert "node_tokens" not in _tables(url) and "deployments" in _tables(url)
    _down(url, "0006 -> 0005")
    assert "deployments" not in _tables(url) and "artifacts" in _tables(url)
    _down(url, "0005 -> 0004")
    assert "artifacts" not in _tables(url) and "users" in _tables(url)
    _down(url, "0004 -> 0003")
    assert not set(CONTROL_TABLES) & _tables(url) and set(FLEET_TABLES) <= _tables(url)
    _down(url, "0003 -> 0002")
    assert not set(FLEET_TABLES) & _tables(url) and "model_servers" in _tables(url)
    _down(url, "0002 -> 0001")
    assert "model_servers" not in _tables(url) and "inferences" in _tables(url)
    down = run_cli("migrate", "down", "--revision", "base", *db_args)
    assert down.returncode == 0 and b"0001 -> empty" in down.stdout
    assert not {"plugins", "inferences"} & _tables(url)
    assert run_cli("migrate", "up", *db_args).returncode == 0  # and back up again
    assert {"plugins", "inferences", "model_weights"} <= _tables(url)


def test_round_trip_sqlite(storage):
    _round_trip(["--storagePath", str(storage)], f"sqlite:///{storage}/modrun.db")


def test_round_trip_postgresql(postgres):
    url = postgres.fresh_database("migrations_rt")
    _round_trip(["--db", url], url)


def test_serve_creates_and_migrates_sqlite_on_first_start(app_dir, storage):
    (app_dir / "t.wasm").write_bytes(TEXTKIT_C.read_bytes())
    with ModrunServer(app_dir, storage, "--noreload"):
        pass
    assert (storage / "modrun.db").exists()
    assert run_cli("migrate", "status", "--storagePath", str(storage)).returncode == 0


def test_serve_refuses_unmigrated_postgresql_unless_told(app_dir, storage, postgres):
    url = postgres.fresh_database("serve_check")
    (app_dir / "t.wasm").write_bytes(TEXTKIT_C.read_bytes())
    refused = run_cli("serve", "--plugins", str(app_dir), "--db", url, "--storagePath", str(storage))
    assert refused.returncode == 2
    assert b"needs 0012: run `modrun migrate up --db URL`, or start with --migrate" in refused.stderr
    with ModrunServer(app_dir, storage, "--noreload", "--db", url, "--migrate"):
        pass
    assert run_cli("migrate", "status", "--db", url).returncode == 0
    # a schema from a newer modrun is refused too, even with --migrate
    with sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://")).begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    newer = run_cli(
        "serve", "--plugins", str(app_dir), "--db", url, "--migrate", "--storagePath", str(storage)
    )
    assert newer.returncode == 2
    assert b"schema revision 9999, newer than this modrun knows" in newer.stderr


def test_database_chosen_by_environment(tmp_path, storage):
    for variable in ("MODRUN_DB", "HYPERMODE_METADATA_DB"):
        target = tmp_path / f"{variable.lower()}.db"
        env = {variable: f"sqlite:///{target}"}
        up = run_cli("migrate", "up", "--storagePath", str(storage), env=env)
        assert up.returncode == 0, up.stderr
        assert str(target).encode() in up.stdout
        assert {"plugins", "inferences"} <= _tables(f"sqlite:///{target}")
    assert not (storage / "modrun.db").exists()  # the default was not used
