"""local and embedded executors: real model processes, pools, crashes, hangs."""

from __future__ import annotations

import concurrent.futures
import json
import sys
import time
from pathlib import Path

import httpx
import pytest

from apps import envelope, make_app
from support import ModrunServer, wait_until

MODEL = Path(__file__).with_name("model.py")


def _spec(protocol: str = "jsonl", **extra) -> dict:
    ready = extra.pop("ready", False)
    args = f"--protocol {protocol}" + (" --ready" if ready else "")
    spec = {
        "provider": "local",
        "command": f"{sys.executable} {MODEL} {args}",
        "protocol": protocol,
        "ready": ready,
    }
    spec.update(extra)
    return spec


def _invoke(c: httpx.Client, model: str, payload) -> dict:
    return envelope(c, "model", {"model": model, "input": payload})


@pytest.fixture
def node(app_dir, storage, bridge_wasm):
    manifest = {
        "models": {
            "jsonl": _spec("jsonl"),
            "mer": _spec("mer"),
            "ready": _spec("jsonl", ready=True),
            "pool4": _spec("jsonl", pool=4),
            "fragile": _spec("jsonl", timeout=1),
            "narrow": _spec("jsonl", queueTimeout=0.5, timeout=5),
            "missing": {
                "provider": "local",
                "command": "/nonexistent/model-binary",
                "queueTimeout": 1,
                "readyTimeout": 2,
                "protocol": "mer",
            },
            "sentiment": {"provider": "embedded", "sourceModel": "vader"},
        }
    }
    make_app(app_dir, bridge_wasm, manifest)
    with ModrunServer(app_dir, storage, "--noreload") as server, server.client(timeout=60) as c:
        yield server, c


def test_both_protocols_answer_from_warm_processes(node):
    _server, c = node
    for model in ("jsonl", "mer", "ready"):
        first = _invoke(c, model, {"text": "hello"})
        second = _invoke(c, model, {"text": "again"})
        assert first["result"]["text"] == "HELLO" and second["result"]["text"] == "AGAIN", model
        assert first["result"]["pid"] == second["result"]["pid"], "the process is reused"


def test_pool_serves_requests_in_parallel(node):
    server, _c = node

    def call(i: int) -> tuple[int, float]:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            return _invoke(c, "pool4", {"op": "slow", "text": str(i)})["result"]["pid"]

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        pids = list(pool.map(call, range(8)))
    elapsed = time.monotonic() - started
    assert 2 <= len(set(pids)) <= 4
    assert elapsed < 8 * 0.3, f"8 slow calls took {elapsed:.2f}s: not run in parallel"


def test_crashed_process_is_restarted(node):
    _server, c = node
    before = _invoke(c, "jsonl", {"text": "a"})["result"]["pid"]
    crash = _invoke(c, "jsonl", {"op": "crash"})
    assert "process exited" in crash["error"] and "crashing on purpose" in crash["error"]
    after = wait_until(lambda: _invoke(c, "jsonl", {"text": "b"}).get("result"), what="restart")
    assert after["text"] == "B" and after["pid"] != before
    status = {m["name"]: m for m in c.get("/models").json()["models"]}["jsonl"]["status"]
    assert status["restarts"] == 1 and status["alive"] == 1


def test_hung_process_is_killed_after_its_timeout(node):
    _server, c = node
    started = time.monotonic()
    hung = _invoke(c, "fragile", {"op": "hang"})
    assert "no answer within the time limit" in hung["error"] and "killed" in hung["error"]
    assert time.monotonic() - started < 5
    assert (
        wait_until(lambda: _invoke(c, "fragile", {"text": "ok"}).get("result"), what="replacement")["text"]
        == "OK"
    )


def test_queue_timeout_when_all_processes_are_busy(node):
    server, c = node
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        busy = pool.submit(
            lambda: httpx.post(
                server.url + "/functions/model",
                timeout=30,
                content=json.dumps({"model": "narrow", "input": {"op": "hang"}}),
            )
        )
        time.sleep(0.3)
        waiting = _invoke(c, "narrow", {"text": "x"})
        assert "no process free within 0.5s" in waiting["error"]
        assert "no answer within the time limit" in json.loads(busy.result().content)["error"]


def test_a_model_that_cannot_start_is_reported(node):
    _server, c = node
    doc = _invoke(c, "missing", {"text": "x"})
    assert "no process free" in doc["error"] and "0 of 1 running" in doc["error"]
    status = {m["name"]: m for m in c.get("/models").json()["models"]}["missing"]["status"]
    assert status["healthy"] is False and status["lastError"]
    assert c.get("/health").json()["status"] == "ok"  # the node itself is fine


def test_stderr_becomes_node_log_lines(node):
    server, c = node
    assert _invoke(c, "jsonl", {"op": "stderr", "text": "kettle"})["result"]["text"] == "KETTLE"
    wait_until(lambda: "model: note about kettle" in server.log(), what="stderr in the log")
    assert "modrun.model.jsonl" in server.log()


def test_embedded_sentiment_model(node):
    _server, c = node
    doc = _invoke(c, "sentiment", {"texts": ["I love this, it is wonderful!", "This is terrible."]})
    labels = [r["label"] for r in doc["result"]]
    assert labels == ["positive", "negative"]
    direct = c.post("/models/sentiment/invoke", json="The meeting is at noon.").json()
    assert direct["result"]["label"] == "neutral"


def test_models_listing_and_inference_history(node):
    _server, c = node
    _invoke(c, "mer", {"text": "logged"})
    models = {m["name"]: m for m in c.get("/models").json()["models"]}
    assert models["mer"]["provider"] == "local" and models["mer"]["protocol"] == "mer"
    assert models["pool4"]["status"]["processes"] == 4
    wait_until(lambda: c.get("/inferences", params={"model": "mer"}).json()["inferences"], what="history")
    row = c.get("/inferences", params={"model": "mer"}).json()["inferences"][0]
    assert row["output"]["text"] == "LOGGED" and row["function"] == "model"
