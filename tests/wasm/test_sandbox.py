"""Limits and isolation: runaway, greedy and crashing plugins never take the node down."""

from __future__ import annotations

import concurrent.futures
import time

import httpx


def post(server, name: str, body: bytes = b"", timeout: float = 30) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=timeout) as c:
        return c.post(f"/functions/{name}", content=body)


def test_infinite_loop_times_out_while_other_calls_are_served(sandbox_server):
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        started = time.monotonic()
        spinning = [pool.submit(post, sandbox_server, "spin") for _ in range(2)]
        # while two calls spin, quick calls keep being answered promptly
        for _ in range(20):
            quick_started = time.monotonic()
            assert post(sandbox_server, "echo", b"ping").content == b"ping"
            assert time.monotonic() - quick_started < 0.5
        results = [f.result() for f in spinning]
        elapsed = time.monotonic() - started
    for r in results:
        assert r.status_code == 504
        assert r.json()["kind"] == "CallTimeout"
        assert "time limit" in r.json()["error"]
    assert elapsed < 5, "a 1s timeout took far too long to fire"


def test_memory_bomb_hits_the_limit(sandbox_server):
    r = post(sandbox_server, "grow")
    assert r.status_code == 507
    assert r.json()["kind"] == "MemoryLimitExceeded"
    assert post(sandbox_server, "noop").status_code == 200


def test_kernel_allocation_bomb_is_refused(sandbox_server):
    r = post(sandbox_server, "hoard")
    # the guest sees alloc return 0 and gives up with a non-zero code
    assert r.status_code == 422
    assert r.json()["error"] == "function returned error code 3"


def test_trap_reports_the_cause(sandbox_server):
    r = post(sandbox_server, "crash")
    assert r.status_code == 500
    assert r.json() == {
        "error": "wasm trap: wasm `unreachable` instruction executed",
        "function": "crash",
        "plugin": "sandbox",
        "kind": "Trap",
    }


def test_stack_overflow_is_a_trap(sandbox_server):
    r = post(sandbox_server, "deep")
    assert r.status_code == 500
    assert "stack" in r.json()["error"]


def test_http_to_an_undeclared_host_is_refused(sandbox_server):
    r = post(sandbox_server, "fetch")
    assert r.status_code == 502
    assert r.json()["kind"] == "HostFunctionError"
    assert "https://example.com/" in r.json()["error"]
    assert "refused" in r.json()["error"]


def test_nonzero_return_without_message(sandbox_server):
    r = post(sandbox_server, "refuse")
    assert r.status_code == 422
    assert r.json()["error"] == "function returned error code 7"


def test_input_larger_than_memory_limit(sandbox_server):
    r = post(sandbox_server, "echo", b"x" * (40 * 1024 * 1024), timeout=60)
    assert r.status_code == 507
    assert "memory limit" in r.json()["error"]


def test_wasi_sees_no_env_and_no_files(sandbox_server):
    assert post(sandbox_server, "env").text == "none"
    assert post(sandbox_server, "readFile").text == "denied"


def test_wasi_stdout_and_stderr_become_call_logs(sandbox_server):
    with httpx.Client(base_url=sandbox_server.url) as c:
        doc = c.post("/graphql", json={"query": '{ print(input: "") }'}).json()
    assert doc["data"] == {"print": "printed"}
    assert doc["extensions"]["invocations"]["print"]["logs"] == [
        {"level": "info", "message": "to stdout"},
        {"level": "error", "message": "to stderr"},
    ]


def test_slow_call_after_fast_ones_completes(sandbox_server):
    """A function that was fast so far (and so may run inline) still completes
    correctly when one call suddenly takes much longer."""
    for _ in range(20):
        assert post(sandbox_server, "busy", b"x").text == "k"
    started = time.monotonic()
    slow = post(sandbox_server, "busy", b"x" * 3000)  # ~300M iterations
    assert slow.status_code == 200, slow.text
    assert slow.text == "k"
    assert time.monotonic() - started < 5


def test_node_still_healthy_after_all_that(sandbox_server):
    with httpx.Client(base_url=sandbox_server.url) as c:
        assert c.get("/health").json()["status"] == "ok"
    assert sandbox_server.proc.poll() is None
