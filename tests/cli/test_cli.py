"""The modrun command line: flags in every Go style, `call`, help, errors."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from support import TEXTKIT_C, ModrunServer, free_port, run_cli


def test_call_prints_output_and_logs_to_stderr(examples_dir, storage):
    r = run_cli("call", "wordCount", "a b c", "--plugins", str(examples_dir), "--storagePath", str(storage))
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"bytes": 5, "words": 3, "lines": 1}
    assert b"[info] counted 3 words in 5 bytes" in r.stderr


def test_call_reads_stdin_and_files(examples_dir, storage, tmp_path):
    r = run_cli(
        "call", "reverse", "-", "--plugins", str(examples_dir), "--storagePath", str(storage), input=b"stdin!"
    )
    assert r.stdout == b"!nidts"
    f = tmp_path / "in.txt"
    f.write_bytes(b"file")
    r = run_cli(
        "call", "reverse", "-f", str(f), "--plugins", str(examples_dir), "--storagePath", str(storage)
    )
    assert r.stdout == b"elif"


def test_call_failure_exits_1_with_the_error(examples_dir, storage):
    r = run_cli("call", "greet", "", "--plugins", str(examples_dir), "--storagePath", str(storage))
    assert r.returncode == 1
    assert r.stdout == b""
    assert b"error: hello-as.greet: name must not be empty" in r.stderr


def test_call_unknown_function_exits_2_and_lists_load_errors(app_dir, storage):
    (app_dir / "broken.wasm").write_bytes(b"nope")
    r = run_cli("call", "missing", "--plugins", str(app_dir), "--storagePath", str(storage))
    assert r.returncode == 2
    assert b"no function named 'missing'" in r.stderr
    assert b"broken" in r.stderr and b"not a WebAssembly module" in r.stderr


def test_help_documents_every_serve_flag():
    text = run_cli("serve", "--help", env={"COLUMNS": "200"}).stdout.decode()
    for flag in (
        "--plugins",
        "--plugin",
        "--appPath",
        "--port",
        "--host",
        "--storagePath",
        "--refresh",
        "--noreload",
        "--jsonlogs",
        "--logLevel",
        "--timeout",
        "--maxMemory",
        "--maxInput",
        "--workers",
    ):
        assert flag in text, flag
    top = run_cli("--help", env={"COLUMNS": "200"}).stdout.decode()
    assert "serve" in top and "call" in top


def test_an_unreachable_database_is_one_line_and_exit_2(examples_dir, storage):
    for command in (["serve", "--plugins", str(examples_dir)], ["orchestrator", "--port", str(free_port())]):
        r = run_cli(*command, "--storagePath", str(storage), "--db", "postgresql://nobody@127.0.0.1:1/x")
        lines = r.stderr.decode().strip().splitlines()
        assert r.returncode == 2, r.stderr
        assert lines[-1].startswith(
            "error: cannot reach the database postgresql+psycopg://nobody@127.0.0.1:1/x"
        )
        assert "Traceback" not in r.stderr.decode() and "╭" not in r.stderr.decode()


def test_migrations_say_one_line_when_they_run_and_nothing_otherwise(examples_dir, storage):
    for run in range(2):
        with ModrunServer(examples_dir, storage, "--noreload") as server:
            pass
        log = server.log()
        assert "alembic" not in log
        migrated = [line for line in log.splitlines() if "migrated from" in line]
        assert len(migrated) == (1 if run == 0 else 0), migrated
        (storage / f"server-{server.port}.log").unlink()


def test_bad_flags_are_one_clear_line_and_exit_2(examples_dir):
    for args, says in [
        (["serve", "--plugins", str(examples_dir), "--refresh", "5 parsecs"], "invalid duration '5 parsecs'"),
        (["serve", "--nope"], "No such option: --nope"),
        (["call"], "Missing argument 'function'"),
    ]:
        r = run_cli(*args)
        lines = r.stderr.decode().strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert lines[0].startswith("error: ") and says in lines[0], lines


@pytest.mark.parametrize("style", ["single-dash", "equals", "double-dash"])
def test_go_style_flags(style, examples_dir, storage):
    port = free_port()
    args = {
        "single-dash": [
            "-plugins",
            str(examples_dir),
            "-port",
            str(port),
            "-storagePath",
            str(storage),
            "-noreload",
            "-jsonlogs",
        ],
        "equals": [
            f"--plugins={examples_dir}",
            f"--port={port}",
            f"--storagePath={storage}",
            "--noreload=true",
            "--jsonlogs=true",
        ],
        "double-dash": [
            "--appPath",
            str(examples_dir),
            "--port",
            str(port),
            "--storagePath",
            str(storage),
            "--noreload",
            "--jsonlogs",
        ],
    }[style]
    # the seeds start the runtime with flags only: no `serve` needed
    server = ModrunServer(examples_dir, storage, port=port)
    server.args = args
    with server:
        assert httpx.post(server.url + "/functions/reverse", content="go").text == "og"
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert any(doc["message"].startswith("serving 21 functions from 4 plugins") for doc in lines)
    assert all({"time", "level", "logger", "message"} <= set(doc) for doc in lines)


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.decode().startswith("modrun ")


def test_restart_uses_the_compiled_module_cache(app_dir, storage):
    shutil.copy(TEXTKIT_C, app_dir / "t.wasm")
    with ModrunServer(app_dir, storage, "--noreload") as first:
        pass
    assert "(compiled," in first.log()
    assert list((storage / "cache" / "modules").glob("*.cwasm"))
    with ModrunServer(app_dir, storage, "--noreload") as second:
        assert httpx.post(second.url + "/functions/reverse", content="ab").text == "ba"
    assert "(compile cache," in second.log()


def test_sigterm_shuts_down_cleanly_after_wasi_output(examples_dir, storage):
    """WASI output once crashed the process at exit; every run must end with 0."""
    for _ in range(3):
        server = ModrunServer(examples_dir, storage, "--noreload").start()
        with server.client() as c:
            assert c.post("/functions/wordCount", content="a b").status_code == 200
        assert server.stop() == 0, server.log()[-2000:]  # a graceful shutdown exits 0
        assert "Finished server process" in server.log()
    for _ in range(3):
        r = run_cli("call", "wordCount", "x", "--plugins", str(examples_dir), "--storagePath", str(storage))
        assert r.returncode == 0, r.stderr[-2000:]
