from __future__ import annotations

import pytest

from fleet_support import OrchestratorProcess, PrivateMosquitto
from support import HELLO_AS


@pytest.fixture(scope="module")
def mosquitto():
    broker = PrivateMosquitto()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def orchestrator(mosquitto, tmp_path_factory: pytest.TempPathFactory):
    """An orchestrator on the private Mosquitto with a keepalive the tests can outwait."""
    storage = tmp_path_factory.mktemp("orchestrator")
    with OrchestratorProcess(
        storage, "--mqtt", mosquitto.url, "--keepalive", "1s", "--keepaliveTimeout", "2s"
    ) as o:
        with o.api() as api:
            assert api.put("/api/files/hello.wasm", content=HELLO_AS.read_bytes()).status_code == 201
        yield o
