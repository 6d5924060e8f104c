"""``modrun serve --processes N``: one port, N real processes, one node to its users.

The processes share the compiled-module cache and hot reload, /metrics adds
them up, one that dies of SIGKILL is restarted while calls go on, and SIGTERM
stops all of them gracefully."""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from support import HELLO_AS, TEXTKIT_C, CallLoad, ModrunServer, free_port, run_cli, wait_until


def serving_processes(supervisor: int) -> list[int]:
    """Pids of the supervisor's node processes (not multiprocessing's resource tracker)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == supervisor and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def fresh_call(url: str, function: str = "greet", body: bytes = b'"x"') -> int:
    """One call on a new connection (the kernel picks a process per connection)."""
    with httpx.Client(timeout=30) as client:
        return client.post(f"{url}/functions/{function}", content=body).status_code


def metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


@pytest.fixture
def two_processes(tmp_path: Path, storage: Path):
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(HELLO_AS, app / "hello.wasm")
    server = ModrunServer(app, storage, "--processes", "2", "--refresh", "200ms").start()
    assert server.proc is not None
    wait_until(lambda: len(serving_processes(server.proc.pid)) == 2, what="two processes")
    yield server
    server.stop()


def test_processes_serve_one_port_with_one_metrics_and_one_reload(two_processes: ModrunServer):
    server = two_processes
    assert [fresh_call(server.url) for _ in range(40)] == [200] * 40
    answered = {httpx.get(server.url + "/health").json()["processes"]["answered"] for _ in range(30)}
    assert answered == {0, 1}  # the kernel spreads new connections over both processes
    # whichever process a scrape reaches, it reports the node: both processes, all 40 calls
    calls = 'modrun_function_calls_total{function="greet",plugin="hello"}'
    for _ in range(6):
        assert metric(server.url, calls) == 40
        assert metric(server.url, "modrun_processes") == 2
        assert metric(server.url, "modrun_plugins_loaded") == 1  # the same plugin, not counted twice

    shutil.copy(TEXTKIT_C, server.plugins / "textkit.wasm")  # hot reload reaches every process
    wait_until(
        lambda: all(fresh_call(server.url, "noop", b"") == 200 for _ in range(12)),
        what="textkit in every process",
    )
    assert "compile cache" in server.log()  # the second process loaded what the first compiled


def test_a_killed_process_is_restarted_while_calls_go_on(two_processes: ModrunServer):
    server = two_processes
    assert server.proc is not None
    victim = serving_processes(server.proc.pid)[1]
    with CallLoad(lambda: fresh_call(server.url)) as load:
        wait_until(lambda: len(load.outcomes) > 40, what="calls before the kill")
        before = len(load.outcomes)
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: len(set(serving_processes(server.proc.pid)) - {victim}) == 2,
            timeout=30,
            what="a new process",
        )
        wait_until(
            lambda: metric(server.url, "modrun_process_restarts_total") == 1, what="the restart counted"
        )
        time.sleep(1)
    # at most the calls the killed process had in flight (one per caller); connections
    # that arrived while it restarted waited in its socket's backlog and were answered
    assert sum(load.failed().values()) <= load.threads, load.failed()
    assert len(load.outcomes) > before + 20
    assert re.search(
        r"process 1 \(pid \d+\) died after [\d.]+s \(signal SIGKILL\); restarting it", server.log()
    )


def test_sighup_replaces_every_process_without_losing_a_call(two_processes: ModrunServer):
    server = two_processes
    assert server.proc is not None
    before = set(serving_processes(server.proc.pid))

    def kept_alive_and_new(client: httpx.Client) -> int:
        status = client.post("/functions/greet", content=b'"x"').status_code
        return status if status != 200 else fresh_call(server.url)

    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        CallLoad(lambda: kept_alive_and_new(client)) as load,
    ):
        wait_until(lambda: len(load.outcomes) > 40, what="calls before SIGHUP")
        server.proc.send_signal(signal.SIGHUP)
        wait_until(
            lambda: "every process replaced" in server.log(), timeout=60, what="the processes replaced"
        )
        wait_until(
            lambda: not before & set(serving_processes(server.proc.pid)), timeout=30, what="old ones gone"
        )
        time.sleep(0.5)
    assert len(serving_processes(server.proc.pid)) == 2
    assert load.failed() == {} and len(load.outcomes) > 40
    assert metric(server.url, "modrun_process_restarts_total") == 0  # replaced, not died


def test_sigterm_stops_every_process_after_its_calls(two_processes: ModrunServer, sandbox_wasm: Path):
    server = two_processes
    shutil.copy(sandbox_wasm, server.plugins / "sandbox.wasm")
    wait_until(
        lambda: all(fresh_call(server.url, "noop", b"") == 200 for _ in range(8)), what="sandbox loaded"
    )
    assert server.proc is not None
    children = serving_processes(server.proc.pid)
    answers: list[int] = []

    def slow_call() -> None:
        answers.append(fresh_call(server.url, "busy", b"x" * 2000))

    callers = [threading.Thread(target=slow_call) for _ in range(6)]
    for thread in callers:
        thread.start()
    time.sleep(0.3)
    server.proc.send_signal(signal.SIGTERM)
    for thread in callers:
        thread.join(60)
    assert server.proc.wait(30) == 0, server.log()
    assert answers == [200] * 6
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]


def test_a_taken_port_is_a_clear_error(storage: Path, examples_dir: Path):
    with ModrunServer(examples_dir, storage) as first:
        r = run_cli(
            "serve", "--plugins", str(examples_dir), "--port", str(first.port),
            "--storagePath", str(storage), "--processes", "2",
        )  # fmt: skip
        assert r.returncode == 2
        assert f"127.0.0.1:{first.port} is already in use" in r.stderr.decode()
        assert fresh_call(first.url) == 200  # and the running node kept its port to itself


def test_a_fleet_node_is_one_process(storage: Path, examples_dir: Path):
    r = run_cli(
        "serve", "--plugins", str(examples_dir), "--port", str(free_port()), "--storagePath", str(storage),
        "--orchestrator", "http://127.0.0.1:9", "--processes", "4",
    )  # fmt: skip
    assert r.returncode == 2
    assert "a node that joins a fleet runs as one process" in r.stderr.decode()
