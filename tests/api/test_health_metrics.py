"""GET /health and GET /metrics."""

from __future__ import annotations

import re


def _sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{{{want}}}")


def test_health_reports_plugins_and_version(example_server):
    with example_server.client() as c:
        doc = c.get("/health").json()
    assert doc["status"] == "ok"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", doc["version"])
    assert {p["name"] for p in doc["plugins"]} == {"hello-as", "textkit-c", "connect-as", "chat-as"}
    assert doc["loadErrors"] == {}
    textkit = next(p for p in doc["plugins"] if p["name"] == "textkit-c")
    assert textkit["wasi"] is True and "wordCount" in textkit["functions"]
    assert len(textkit["sha256"]) == 64


def test_metrics_count_calls_errors_and_durations(example_server):
    with example_server.client() as c:
        for _ in range(3):
            c.post("/functions/rot13", content="abc")
        c.post("/functions/rot13", content="é".encode())
        text = c.get("/metrics").text
    calls = _sample(text, "modrun_function_calls_total", plugin="textkit-c", function="rot13")
    errors = _sample(
        text, "modrun_function_errors_total", plugin="textkit-c", function="rot13", kind="GuestError"
    )
    count = _sample(text, "modrun_function_duration_seconds_count", plugin="textkit-c", function="rot13")
    inf = _sample(
        text, "modrun_function_duration_seconds_bucket", plugin="textkit-c", function="rot13", le="+Inf"
    )
    assert calls >= 4 and errors >= 1
    assert count == calls == inf
    assert "modrun_plugins_loaded 4.0" in text
