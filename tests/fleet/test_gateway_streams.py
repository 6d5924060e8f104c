"""Streams through the gateway: an orchestrator and a real node serving
examples/chat-as as a fleet module; the gateway passes the node's events on
as they arrive (never buffering the answer), a caller that leaves the gateway
stops the call on the node and its model request, and a node killed mid-way
ends the stream with an error event."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from fleet_support import OrchestratorProcess
from modrun.plugins.wasmbin import append_custom_section
from support import CHAT_AS, EXAMPLES, ModrunServer, chat_app, run_cli, wait_until

pytestmark = pytest.mark.slow

SSE = {"Accept": "text/event-stream"}


def test_streams_pass_through_the_gateway(tmp_path: Path, api_server: str):
    orchestrator = OrchestratorProcess(tmp_path / "orch", "--keepalive", "1s").start()
    plugins = chat_app(
        tmp_path / "n1-plugins", api_server, "delay-40", plugin=False
    )  # chat comes as a module
    storage = tmp_path / "n1-storage"
    storage.mkdir()
    node = ModrunServer(plugins, storage, "--noreload", "--orchestrator", orchestrator.url, "--name", "n1")
    node.start()
    api = orchestrator.api()
    try:
        schema = (EXAMPLES / "chat-as" / "modrun.schema.json").read_bytes()  # typed, with its streaming flags
        wasm = tmp_path / "chat.wasm"
        wasm.write_bytes(append_custom_section(CHAT_AS.read_bytes(), "modrun.schema", schema))
        created = run_cli("module", "create", str(wasm), "--name", "chat", "--orchestrator", orchestrator.url)
        assert created.returncode == 0, created.stderr.decode()
        wait_until(
            lambda: api.post("/functions/chat", content=b"hi").status_code == 200, what="gateway answers"
        )
        assert api.post("/functions/chat", content=b"hi").text == "echo: hi"

        # each event arrives when the node sends it, not when the answer is complete
        arrivals = []
        started = time.perf_counter()
        with api.stream("POST", "/functions/chatUpper", content=b"count:10", headers=SSE) as response:
            assert response.status_code == 200 and response.headers["x-modrun-node"] == "n1"
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith("data: "):
                    arrivals.append((time.perf_counter() - started, line[6:]))
        assert [text for _, text in arrivals[:10]] == [f"{i} " for i in range(1, 10)] + ["10"]
        assert json.loads(arrivals[-1][1])["chunks"] == 10
        assert arrivals[-1][0] - arrivals[0][0] > 0.2  # 40 ms a token: spread out, not in one lump

        # a GraphQL subscription through the gateway, its events as they come (graphql-sse)
        query = {"query": 'subscription { chatUpper(prompt: "count:5") }'}
        events = []
        with api.stream("POST", "/graphql", json=query, headers=SSE) as response:
            assert response.status_code == 200 and response.headers["x-modrun-node"] == "n1"
            for line in response.iter_lines():
                if line.startswith("event: "):
                    events.append((line[7:], time.perf_counter()))
        assert [name for name, _ in events] == ["next"] * 5 + ["complete"]
        assert events[-2][1] - events[0][1] > 0.1  # 40 ms a token: passed on as they came

        # a caller leaving the gateway stops the call on the node, and its model request
        before = httpx.get(f"{api_server}/_streams").json()
        with api.stream("POST", "/functions/chat", content=b"count:400", headers=SSE) as response:
            for i, _line in enumerate(response.iter_lines()):
                if i > 4:
                    break
        wait_until(
            lambda: httpx.get(f"{api_server}/_streams").json()["closed_early"] > before["closed_early"],
            what="the model request closed",
        )

        # the node dies mid-stream: the stream ends with an error event
        with api.stream("POST", "/functions/chat", content=b"count:400", headers=SSE) as response:
            lines = response.iter_lines()
            next(lines)
            assert node.proc is not None
            node.proc.send_signal(signal.SIGKILL)
            rest = list(lines)
        assert "event: error" in rest and "node lost during the call" in rest[-2], rest[-3:]
    finally:
        if node.proc is not None and node.proc.poll() is None:
            node.stop()
        api.close()
        orchestrator.stop()
