"""Streaming calls on a real node: examples/chat-as reads an OpenAI-compatible
model's server-sent events token by token (tests/servers/apis.py, with a
per-token delay) and emits each as it comes; the node serves them as SSE or
NDJSON, stops the function and closes the model request when the client
goes, applies the model's idle timeout and the call's timeout, holds a slow
reader's model back, bounds open streams, and records one inference row per
stream."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from modrun import Runtime
from support import ModrunServer, chat_app, modrun_cmd, run_cli, wait_until

SSE = {"Accept": "text/event-stream"}
NDJSON = {"Accept": "application/x-ndjson"}


def make_app(root: Path, api_server: str, model: str = "delay-20", timeout: float | None = None) -> Path:
    return chat_app(root / "app", api_server, model, timeout=timeout)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, api_server: str):
    root = tmp_path_factory.mktemp("streaming")
    app = make_app(root, api_server)
    with ModrunServer(app, root, "--noreload", "--timeout", "3s") as server, server.client() as client:
        yield server, client


def sse_events(response: httpx.Response) -> list[tuple[str, str, float]]:
    """(event, data, seconds since the request) for each event, as it arrived."""
    started = time.perf_counter()
    events, name, data = [], "message", []
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            events.append((name, "\n".join(data), time.perf_counter() - started))
            name, data = "message", []
    return events


def streams_seen(api_server: str) -> dict:
    return httpx.get(f"{api_server}/_streams").json()


def test_tokens_arrive_as_the_model_sends_them(node):
    _server, client = node
    with client.stream("POST", "/functions/chatUpper", content=b"count:8", headers=SSE) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    chunks = [data for name, data, _at in events if name == "message"]
    assert chunks == ["1 ", "2 ", "3 ", "4 ", "5 ", "6 ", "7 ", "8"]  # uppercased digits are digits
    name, data, done_at = events[-1]
    assert name == "done"
    done = json.loads(data)
    assert done["chunks"] == 8 and done["usage"]["completion_tokens"] == 8 and done["durationMs"] > 0
    # the first token came while the model was still producing the other seven (20 ms each)
    first_at = events[0][2]
    assert done_at - first_at > 0.1, events


def test_without_a_stream_accept_header_the_answer_is_whole(node):
    _server, client = node
    answer = client.post("/functions/chatUpper", content=b"hello world")
    assert answer.status_code == 200 and answer.text == "ECHO: HELLO WORLD"


def test_ndjson_lines_then_done(node):
    _server, client = node
    with client.stream("POST", "/functions/chat", content=b"hi there", headers=NDJSON) as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [line["data"] for line in lines[:-1]] == ["echo: ", "hi ", "there"]
    assert lines[-1]["event"] == "done" and lines[-1]["chunks"] == 3


def test_a_client_that_goes_away_stops_the_function_and_the_model_request(node, api_server):
    _server, client = node
    before = streams_seen(api_server)
    with client.stream("POST", "/functions/chat", content=b"count:500", headers=SSE) as response:
        for i, _line in enumerate(response.iter_lines()):
            if i > 4:
                break
        gone_at = time.time()
    wait_until(
        lambda: streams_seen(api_server)["closed_early"] > before["closed_early"], what="upstream closed"
    )
    after = streams_seen(api_server)
    assert after["finished"] == before["finished"]  # 500 tokens at 20 ms: it was far from done
    assert after["last_closed_at"] - gone_at < 1.0
    # the node serves on; the call is in its metrics as a client that went away
    assert client.post("/functions/chat", content=b"ok").text == "echo: ok"
    metrics = client.get("/metrics").text
    assert 'kind="ClientGone"' in metrics


def test_a_model_failing_mid_stream_ends_the_stream_with_an_error_event(tmp_path, api_server):
    app = make_app(tmp_path, api_server, model="break-after-2")
    with (
        ModrunServer(app, tmp_path, "--noreload") as server,
        server.client() as client,
        client.stream("POST", "/functions/chat", content=b"one two three four", headers=SSE) as response,
    ):
        events = sse_events(response)
    # what came before the failure was delivered (the tokens of a fast model may come together)
    assert "".join(data for name, data, _ in events if name == "message") == "echo: one "
    name, data, _ = events[-1]
    error = json.loads(data)
    assert name == "error" and error["function"] == "chat" and error["kind"] == "GuestError"
    assert "the model failed mid-stream: the model crashed" in error["error"]


def test_the_models_timeout_is_the_longest_wait_for_one_chunk(tmp_path, api_server):
    app = make_app(tmp_path, api_server, model="delay-1500", timeout=0.3)
    with ModrunServer(app, tmp_path, "--noreload") as server, server.client() as client:
        with client.stream("POST", "/functions/chat", content=b"a b", headers=SSE) as response:
            events = sse_events(response)
        whole = client.post("/functions/chat", content=b"a b")
    name, data, _ = events[-1]
    assert name == "error" and "no chunk for 0.3s (idle timeout)" in json.loads(data)["error"]
    assert whole.status_code == 422 and "idle timeout" in whole.json()["error"]


def test_the_calls_timeout_bounds_the_whole_stream(tmp_path, api_server):
    app = make_app(tmp_path, api_server, model="delay-100")
    with (
        ModrunServer(app, tmp_path, "--noreload", "--timeout", "1s") as server,
        server.client() as client,
        client.stream("POST", "/functions/chat", content=b"count:100", headers=SSE) as response,
    ):
        events = sse_events(response)
    chunks = [data for name, data, _ in events if name == "message"]
    assert 3 <= len(chunks) < 15, chunks
    name, data, at = events[-1]
    assert name == "error" and json.loads(data)["kind"] == "CallTimeout", data
    assert at < 3


def test_a_slow_reader_holds_the_model_back(tmp_path, api_server):
    app = make_app(tmp_path, api_server, model="pad-16000")  # 16 kB tokens
    with ModrunServer(app, tmp_path, "--noreload", "--timeout", "60s") as server, server.client() as client:
        before = streams_seen(api_server)
        prompt = b"count:2000"  # 32 MB of events: more than the sockets between can hold
        with client.stream("POST", "/functions/chat", content=prompt, headers=SSE) as response:
            lines = response.iter_lines()
            first = next(lines)
            time.sleep(1.5)  # unread, the model would have sent everything by now
            assert streams_seen(api_server)["finished"] == before["finished"]
            rest = [line for line in lines if line.startswith("data: ") and "durationMs" not in line]
        # every token came, in order (those read while the reader was behind came together)
        tokens = [f"{i} " for i in range(1, 2000)] + ["2000"]
        assert first[6:] + "".join(line[6:] for line in rest) == "".join(t + "x" * 16000 for t in tokens)
        wait_until(lambda: streams_seen(api_server)["finished"] == before["finished"] + 1, what="the end")


def test_open_streams_are_bounded_apart_from_other_calls(tmp_path, api_server):
    app = make_app(tmp_path, api_server, model="delay-50")
    with (
        ModrunServer(app, tmp_path, "--noreload", "--maxStreams", "1") as server,
        server.client() as client,
        client.stream("POST", "/functions/chat", content=b"count:40", headers=SSE) as first,
    ):
        lines = first.iter_lines()  # kept: a dropped iterator closes the connection
        next(lines)
        second = client.post("/functions/chat", content=b"x", headers=SSE)
        assert second.status_code == 503 and "stream limit" in second.json()["error"], (
            second.headers,
            second.text,
        )
        assert client.post("/functions/chat", content=b"whole").text == "echo: whole"  # not a stream


def test_each_stream_is_one_inference_row_with_its_whole_answer(node):
    _server, client = node
    with client.stream("POST", "/functions/chat", content=b"count:4", headers=SSE) as response:
        sse_events(response)

    def row() -> dict | None:
        rows = client.get("/inferences", params={"model": "assistant", "function": "chat"}).json()[
            "inferences"
        ]
        found = [r for r in rows if "count:4" in json.dumps(r["input"])]
        return found[0] if found else None

    found = wait_until(row, what="the stream's inference row")
    assert found["status"] == "ok"
    output = found["output"]
    assert output["choices"][0]["message"]["content"] == "1 2 3 4"
    assert output["stream"]["chunks"] == 4 and output["stream"]["timeToFirstTokenMs"] > 0
    assert output["usage"]["completion_tokens"] == 4


def read_as_it_comes(proc: subprocess.Popen[bytes]) -> list[tuple[float, bytes]]:
    """(seconds since start, bytes) for each read of the process's stdout."""
    assert proc.stdout is not None
    started, pieces = time.perf_counter(), []
    while piece := os.read(proc.stdout.fileno(), 1024):
        pieces.append((time.perf_counter() - started, piece))
    proc.wait(timeout=30)
    return pieces


def test_modrun_call_stream_prints_tokens_as_they_come(node, tmp_path):
    server, _client = node
    remote = subprocess.Popen(
        modrun_cmd("call", "chatUpper", "count:8", "--url", server.url, "--stream"), stdout=subprocess.PIPE
    )
    pieces = read_as_it_comes(remote)
    assert remote.returncode == 0 and b"".join(p for _, p in pieces) == b"1 2 3 4 5 6 7 8"
    assert len(pieces) > 3 and pieces[-1][0] - pieces[0][0] > 0.08  # 20 ms a token, printed as they came
    # in-process, from the plugins directory
    local = subprocess.Popen(
        modrun_cmd(
            "call",
            "chat",
            "hi there",
            "--plugins",
            str(server.plugins),
            "--storagePath",
            str(tmp_path),
            "--stream",
        ),
        stdout=subprocess.PIPE,
    )
    assert b"".join(p for _, p in read_as_it_comes(local)) == b"echo: hi there"
    # a stream that fails says so and exits 1
    failed = run_cli("call", "nope", "x", "--url", server.url, "--stream")
    assert failed.returncode == 2 and b"no function named 'nope'" in failed.stderr


def test_the_python_api_yields_chunks_and_stops_the_call_when_left(node, tmp_path, api_server):
    server, _client = node
    with Runtime(server.plugins, storage_path=tmp_path) as runtime:
        assert list(runtime.stream("chat", "a b c")) == [b"echo: ", b"a ", b"b ", b"c"]
        before = streams_seen(api_server)
        for i, _chunk in enumerate(runtime.stream("chat", "count:300")):
            if i == 2:
                break
        wait_until(lambda: streams_seen(api_server)["closed_early"] > before["closed_early"], what="closed")
        assert runtime.call("chat", "whole") == b"echo: whole"
