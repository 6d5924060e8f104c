"""What is published while the orchestrator is down is not lost: on an
external broker its session outlives it, so a SilverLine create sent while it
was killed (SIGKILL) is placed, once, when it is back."""

from __future__ import annotations

import signal
import time
import uuid

import pytest

from fleet_support import OrchestratorProcess, PrivateMosquitto, RawClient, RawRuntime, envelope
from support import wait_until

pytestmark = pytest.mark.slow


def test_a_create_sent_while_the_orchestrator_was_down_is_placed_once(tmp_path):
    broker = PrivateMosquitto()
    port = None
    try:
        orch = OrchestratorProcess(tmp_path / "orch", "--mqtt", broker.url, "--keepalive", "5s").start()
        port = orch.port
        runtime = RawRuntime(broker.port, name="keeper")
        runtime.register()
        client = RawClient(broker.port)
        orch.stop(signal.SIGKILL)
        module = str(uuid.uuid4())
        request = envelope("create", {"type": "module", "uuid": module, "name": "late", "file": "x.wasm"})
        client.publish("realm/proc/control", request)  # nobody is listening now
        orch = OrchestratorProcess(
            tmp_path / "orch", "--mqtt", broker.url, "--keepalive", "5s", port=port
        ).start()
        with orch.api() as api:
            wait_until(
                lambda: api.get(f"/api/modules/{module}/").status_code == 200, timeout=15, what="placed"
            )
            assert api.get(f"/api/modules/{module}/").json()["parent"] == runtime.uuid
        time.sleep(1)  # time for a second delivery, were there one
        assert [c["uuid"] for c in runtime.creates()] == [module]  # placed once
        orch.stop()
        runtime.close()
        client.close()
    finally:
        broker.stop()
