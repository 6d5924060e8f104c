"""Outbound HTTP and model invocation through manifest connections."""

from __future__ import annotations

import json

import httpx
import pytest

from apps import envelope, fetch, make_app, received
from support import ModrunServer


@pytest.fixture
def served(app_dir, storage, bridge_wasm, api_server):
    manifest = {
        "connections": {
            "echo-api": {
                "type": "http",
                "baseUrl": f"{api_server}/echo/",
                "headers": {"Authorization": "Bearer {{TOKEN}}"},
                "queryParameters": {"key": "{{QKEY}}"},
            },
            "status-api": {"type": "http", "endpoint": f"{api_server}/status/404"},
            "openai": {
                "type": "http",
                "baseUrl": f"{api_server}/v1/",
                "headers": {"Authorization": "Bearer {{API_KEY}}"},
            },
            "kserve": {"type": "http", "baseUrl": f"{api_server}/v1/models/"},
        },
        "models": {
            "chat": {
                "provider": "openai",
                "sourceModel": "gpt-test",
                "connection": "openai",
                "path": "chat/completions",
            },
            "embed": {
                "provider": "openai",
                "sourceModel": "embed-test",
                "connection": "openai",
                "path": "embeddings",
            },
            "flaky": {
                "provider": "openai",
                "sourceModel": "flaky-1",
                "connection": "openai",
                "path": "chat/completions",
                "retries": 3,
            },
            "broken": {
                "provider": "openai",
                "sourceModel": "broken",
                "connection": "openai",
                "path": "chat/completions",
                "retries": 1,
            },
            "slow": {
                "provider": "openai",
                "sourceModel": "slow",
                "connection": "openai",
                "path": "chat/completions",
                "timeout": 0.5,
                "retries": 0,
            },
            "adder": {
                "provider": "kserve",
                "sourceModel": "adder",
                "connection": "kserve",
                "path": "adder:predict",
            },
            "generic": {"provider": "generic", "connection": "echo-api", "path": "score"},
        },
    }
    make_app(app_dir, bridge_wasm, manifest)
    env = {
        "MODRUN_ECHO_API_TOKEN": "tok-123",
        "HYPERMODE_ECHO_API_QKEY": "q-456",
        "OPENAI_API_KEY": "sk-test",
    }
    httpx.post(api_server + "/_reset")
    with ModrunServer(app_dir, storage, "--noreload", env=env) as server, server.client() as c:
        yield server, c


def test_allowed_request_gets_connection_headers_and_query(served, api_server):
    _server, c = served
    status, text = fetch(
        c,
        {
            "url": f"{api_server}/echo/items?page=2",
            "method": "POST",
            "headers": {"X-Custom": "yes", "authorization": "guest-value"},
        },
        b"payload",
    )
    assert status == 200
    echoed = json.loads(text)
    assert echoed["method"] == "POST" and echoed["body"] == "payload"
    assert echoed["headers"]["authorization"] == "Bearer tok-123"  # connection header wins
    assert echoed["headers"]["x-custom"] == "yes"
    assert echoed["query"] == {"page": "2", "key": "q-456"}


def test_status_is_passed_back_and_endpoint_must_match_exactly(served, api_server):
    _server, c = served
    assert fetch(c, {"url": f"{api_server}/status/404"}) == (404, "status 404")
    refused = fetch(c, {"url": f"{api_server}/status/500"})
    assert refused.status_code == 502
    assert refused.json()["error"] == (
        f"HTTP request to {api_server}/status/500 refused: no manifest connection allows this host"
    )


def test_other_hosts_are_refused(served):
    _server, c = served
    r = fetch(c, {"url": "http://127.0.0.1:1/anything"})
    assert r.status_code == 502 and "refused" in r.json()["error"]
    r = fetch(c, {"url": "file:///etc/passwd"})
    assert r.status_code == 502 and "only http and https" in r.json()["error"]


def test_openai_chat_with_key_and_model_filled_in(served, api_server):
    _server, c = served
    doc = envelope(c, "model", {"model": "chat", "input": {"messages": [{"role": "user", "content": "hi"}]}})
    assert doc["result"]["choices"][0]["message"]["content"] == "echo: hi"
    assert doc["result"]["model"] == "gpt-test"
    chat = [r for r in received(api_server) if r["path"] == "/v1/chat/completions"][-1]
    assert chat["headers"]["authorization"] == "Bearer sk-test"


def test_openai_embeddings(served):
    _server, c = served
    doc = envelope(c, "model", {"model": "embed", "input": {"input": ["a", "b"]}})
    assert [d["index"] for d in doc["result"]["data"]] == [0, 1]
    assert len(doc["result"]["data"][0]["embedding"]) == 8


def test_kserve_predict(served, api_server):
    _server, c = served
    doc = envelope(c, "model", {"model": "adder", "input": {"instances": [[1, 2], [3, 4]]}})
    assert doc["result"]["predictions"] == [3, 7]
    assert received(api_server)[-1]["path"] == "/v1/models/adder:predict"


def test_429_is_retried_until_success(served, api_server):
    _server, c = served
    doc = envelope(c, "model", {"model": "flaky", "input": {"messages": [{"role": "user", "content": "x"}]}})
    assert doc["result"]["choices"][0]["message"]["content"] == "echo: x"
    attempts = [r for r in received(api_server) if '"flaky-1"' in r["body"]]
    assert len(attempts) == 3


def test_persistent_failure_and_timeout_reach_the_function_as_errors(served):
    _server, c = served
    doc = envelope(c, "model", {"model": "broken", "input": {"messages": [{"role": "user", "content": "x"}]}})
    assert doc["error"].startswith("model 'broken' failed after 2 attempts: HTTP 503")
    doc = envelope(c, "model", {"model": "slow", "input": {"messages": [{"role": "user", "content": "x"}]}})
    assert "timed out" in doc["error"]
    doc = envelope(c, "model", {"model": "nope", "input": {}})
    assert doc["error"].startswith("no model named 'nope'")
    assert c.get("/health").json()["status"] == "ok"
    metrics = c.get("/metrics").text
    assert 'modrun_model_inferences_total{model="broken",status="error"} 1.0' in metrics


def test_model_errors_appear_in_call_logs(served):
    _server, c = served
    doc = c.post("/graphql", json={"query": '{ model(input: "{\\"model\\": \\"nope\\"}") }'}).json()
    logs = doc["extensions"]["invocations"]["model"]["logs"]
    assert logs[0]["level"] == "warn" and "no model named 'nope'" in logs[0]["message"]


def test_model_host_builds_kserve_urls(app_dir, storage, bridge_wasm):
    manifest = {"models": {"sentiment": {"provider": "kserve"}}}
    make_app(app_dir, bridge_wasm, manifest)
    with (
        ModrunServer(app_dir, storage, "--noreload", "--modelHost", "models.invalid") as server,
        server.client() as c,
    ):
        doc = envelope(c, "model", {"model": "sentiment", "input": {"instances": [1]}})
    assert "http://sentiment.models.invalid/v1/models/sentiment:predict" in doc["error"]


def test_generic_json_model(served, api_server):
    _server, c = served
    doc = envelope(c, "model", {"model": "generic", "input": {"text": "rate me"}})
    echoed = doc["result"]
    assert echoed["method"] == "POST" and echoed["path"] == "/echo/score"
    assert json.loads(echoed["body"]) == {"text": "rate me"}  # sent as is, no "model" added
    assert echoed["headers"]["authorization"] == "Bearer tok-123"  # the connection's headers apply
