"""Every plugin version is recorded in the plugins table when it loads, with
what it says of itself (a modrun.meta custom section or its schema's meta),
on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from modrun.db.engine import make_engine
from modrun.plugins.wasmbin import append_custom_section
from support import HELLO_AS, TEXTKIT_C, ModrunServer, wait_until

META = {
    "version": "1.4.2",
    "language": "AssemblyScript",
    "sdk": "@extism/as-pdk",
    "sdk_version": "1.0.0",
    "build_time": "2026-11-20T10:00:00Z",
    "git_repo": "https://example.com/hello.git",
    "git_commit": "0123abcd",
}


def _rows(url: str) -> dict[str, dict]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {r.name: r._asdict() for r in conn.execute(sa.text("SELECT * FROM plugins"))}
    finally:
        engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_plugins_are_recorded_when_they_load(database, tmp_path: Path, request):
    if database == "postgresql":
        pg = request.getfixturevalue("postgres")
        url = pg.fresh_database(f"plugins_{uuid.uuid4().hex[:8]}")
    else:
        url = f"sqlite:///{tmp_path / 'meta.db'}"
    app = tmp_path / "app"
    app.mkdir()
    (app / "hello.wasm").write_bytes(
        append_custom_section(HELLO_AS.read_bytes(), "modrun.meta", json.dumps(META).encode())
    )
    shutil.copy(TEXTKIT_C, app / "textkit.wasm")
    (tmp_path / "state").mkdir()
    with ModrunServer(app, tmp_path / "state", "--db", url, "--migrate", "--refresh", "200ms") as server:
        wait_until(lambda: {"hello", "textkit"} <= set(_rows(url)), timeout=15, what="plugins recorded")
        hello = _rows(url)["hello"]
        assert {
            k: hello[k] for k in ("version", "language", "sdk", "sdk_version", "git_repo", "git_commit")
        } == {k: META[k] for k in ("version", "language", "sdk", "sdk_version", "git_repo", "git_commit")}
        assert hello["build_time"] is not None and len(hello["build_id"]) == 64
        assert _rows(url)["textkit"]["version"] is None  # says nothing of itself: recorded all the same
        # a new version of a plugin is a new row; no model call was needed for any of this
        (app / "textkit.wasm").write_bytes(append_custom_section(TEXTKIT_C.read_bytes(), "build", b"2"))
        wait_until(
            lambda: sum(1 for _ in _all_builds(url, "textkit")) == 2,
            timeout=15,
            what="the new version recorded",
        )
        assert server.proc is not None


def _all_builds(url: str, name: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(sa.text("SELECT build_id FROM plugins WHERE name = :n"), {"n": name}).scalars()
            )
    finally:
        engine.dispose()
