"""Inference history: every model call recorded, read back, and never lost."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import httpx
import pytest
import sqlalchemy as sa

from apps import envelope, make_app
from support import ModrunServer, run_cli, wait_until


def _manifest(api_server: str) -> dict:
    return {
        "connections": {"llm": {"type": "http", "baseUrl": f"{api_server}/v1/"}},
        "models": {
            "chat": {
                "provider": "openai",
                "sourceModel": "m1",
                "connection": "llm",
                "path": "chat/completions",
            },
            "vec": {"provider": "openai", "sourceModel": "e1", "connection": "llm", "path": "embeddings"},
            "down": {
                "provider": "openai",
                "sourceModel": "broken",
                "connection": "llm",
                "path": "chat/completions",
                "retries": 0,
            },
        },
    }


def _ask(c: httpx.Client, model: str, text: str) -> dict:
    payload = {"messages": [{"role": "user", "content": text}]} if model != "vec" else {"input": text}
    return envelope(c, "model", {"model": model, "input": payload})


def _count(url: str) -> int:
    from modrun.db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM inferences")).scalar_one()
    finally:
        engine.dispose()


def _metric(c: httpx.Client, name: str) -> float:
    for line in c.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def test_inferences_are_recorded_and_read_back(app_dir, storage, bridge_wasm, api_server):
    make_app(app_dir, bridge_wasm, _manifest(api_server))
    with ModrunServer(app_dir, storage, "--noreload") as server, server.client() as c:
        started = time.time()
        for i in range(5):
            _ask(c, "chat", f"q{i}")
        _ask(c, "vec", "embed me")
        assert "error" in _ask(c, "down", "fails")
        wait_until(lambda: _metric(c, "modrun_inference_history_written_total") >= 7, what="rows written")
        everything = c.get("/inferences").json()
        chats = c.get("/inferences", params={"model": "chat", "limit": 2}).json()
        page2 = c.get(
            "/inferences", params={"model": "chat", "limit": 2, "cursor": chats["nextCursor"]}
        ).json()
        page3 = c.get(
            "/inferences", params={"model": "chat", "limit": 2, "cursor": page2["nextCursor"]}
        ).json()
        errors = c.get("/inferences", params={"status": "error"}).json()
        none_yet = c.get("/inferences", params={"since": time.time() + 60}).json()
        window = c.get(
            "/inferences",
            params={"since": started - 1, "until": time.time() + 1, "function": "model", "plugin": "bridge"},
        ).json()
        bad = c.get("/inferences", params={"since": "last tuesday"})
    rows = everything["inferences"]
    assert len(rows) == 7 and everything["nextCursor"] is None
    newest = rows[0]
    assert newest["model"] == "down" and newest["status"] == "error" and "HTTP 503" in newest["error"]
    chat = next(r for r in rows if r["model"] == "chat")
    assert chat["plugin"] == "bridge" and chat["function"] == "model"
    assert chat["input"]["messages"][0]["content"].startswith("q") and chat["input"]["model"] == "m1"
    assert chat["output"]["choices"][0]["message"]["content"].startswith("echo: q")
    assert len(chat["modelHash"]) == 64 and chat["durationMs"] >= 0 and chat["pluginId"]
    contents = [r["input"]["messages"][0]["content"] for p in (chats, page2, page3) for r in p["inferences"]]
    assert contents == ["q4", "q3", "q2", "q1", "q0"]  # newest first, no repeats, no gaps
    assert page3["nextCursor"] is None
    assert [r["model"] for r in errors["inferences"]] == ["down"]
    assert none_yet["inferences"] == []
    assert len(window["inferences"]) == 7
    assert bad.status_code == 400 and "invalid time" in bad.json()["error"]

    cli = run_cli("inferences", "--storagePath", str(storage), "--model", "vec", "--json")
    doc = json.loads(cli.stdout)
    assert [r["model"] for r in doc["inferences"]] == ["vec"]
    table = run_cli("inferences", "--storagePath", str(storage), "--limit", "3", env={"COLUMNS": "200"})
    assert b"3 inferences" in table.stdout and b"more: --cursor" in table.stdout


@pytest.fixture
def own_postgres():
    from databases import PrivatePostgres

    pg = PrivatePostgres()
    pg.start()
    yield pg
    pg.cleanup()


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_postgres_restart_mid_run_loses_nothing(app_dir, storage, bridge_wasm, api_server, own_postgres, how):
    """The database stops (or is SIGKILLed) while calls run, then comes back."""
    make_app(app_dir, bridge_wasm, _manifest(api_server))
    calls = 0
    failures: list[str] = []
    stop = threading.Event()

    def keep_calling(c: httpx.Client) -> None:
        nonlocal calls
        while not stop.is_set():
            doc = _ask(c, "chat", f"n{calls}")
            if "error" in doc:
                failures.append(doc["error"])
            calls += 1

    with (
        ModrunServer(app_dir, storage, "--noreload", "--db", own_postgres.dsn, "--migrate") as server,
        server.client() as c,
    ):
        worker = threading.Thread(target=keep_calling, args=(c,))
        worker.start()
        time.sleep(1.0)
        getattr(own_postgres, how)()  # the database goes away mid-run...
        wait_until(lambda: _metric(c, "modrun_inference_history_spooled") > 0, what="rows spooled")
        time.sleep(1.0)
        wait_until(_restarts(own_postgres), timeout=30, what="PostgreSQL back")  # ...and comes back
        time.sleep(1.0)
        stop.set()
        worker.join()
        wait_until(
            lambda: _metric(c, "modrun_inference_history_pending") == 0, timeout=30, what="spool replayed"
        )
        dropped = _metric(c, "modrun_inference_history_dropped_total")
    assert failures == []  # model calls never failed because of the database
    assert calls > 50
    assert dropped == 0
    assert _count(own_postgres.dsn) == calls
    assert "spooling to" in server.log() and "replayed" in server.log()


def _restarts(pg):
    """A start that is retried: after SIGKILL, backends may hold the old shared memory a moment."""

    def attempt() -> bool:
        try:
            pg.start()
            return True
        except subprocess.CalledProcessError:
            return False

    return attempt


def test_sigterm_flushes_queued_rows(app_dir, storage, bridge_wasm, api_server, own_postgres):
    make_app(app_dir, bridge_wasm, _manifest(api_server))
    server = ModrunServer(app_dir, storage, "--noreload", "--db", own_postgres.dsn, "--migrate").start()
    with server.client() as c:
        for i in range(30):
            _ask(c, "chat", f"t{i}")
    server.stop()  # immediately: rows are still queued
    assert _count(own_postgres.dsn) == 30


def test_a_successor_replays_what_a_replaced_process_spooled(tmp_path, own_postgres):
    """SIGHUP under --processes: the old process of a slot stops (spooling what it
    could not write) while its successor already runs on the same spool."""
    import uuid
    from datetime import UTC, datetime

    from modrun.db.engine import make_engine
    from modrun.db.history import InferenceHistory
    from modrun.db.migrate import ensure_schema

    up = make_engine(own_postgres.dsn)
    ensure_schema(up, own_postgres.dsn, allow_migrate=True)
    spool = tmp_path / "spool"
    successor = InferenceHistory(up, spool, flush_interval=0.05).start()  # its own count of the spool: 0
    replaced = InferenceHistory(make_engine("postgresql://postgres@127.0.0.1:9/gone"), spool).start()
    for i in range(30):
        replaced.record(
            {"id": uuid.uuid4(), "model_hash": "h", "model_name": "m", "input": f"{i}", "output": "o",
             "started_at": datetime.now(UTC), "duration_ms": 1, "plugin_id": None, "plugin_build_id": None,
             "plugin": None, "function": None, "status": "success", "error": None}
        )  # fmt: skip
    replaced.close(timeout=10)  # its database is unreachable: the rows go to the shared spool
    try:
        wait_until(lambda: _count(own_postgres.dsn) == 30, timeout=20, what="the successor's replay")
        assert successor.dropped == 0 and replaced.dropped == 0
        assert (spool / "inferences.jsonl").read_text() == ""  # emptied, not removed, under its lock
    finally:
        successor.close()
        up.dispose()
