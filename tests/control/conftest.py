from __future__ import annotations

import httpx
import pytest

from control_support import ADMIN_PASSWORD, login
from fleet_support import OrchestratorProcess
from modrun.control.routing import PREFIX


@pytest.fixture(scope="module")
def orch(tmp_path_factory: pytest.TempPathFactory):
    """A real orchestrator whose first admin has a known password."""
    storage = tmp_path_factory.mktemp("control")
    with OrchestratorProcess(
        storage,
        "--maxArtifactSize",
        "4MiB",
        env={"MODRUN_ADMIN_PASSWORD": ADMIN_PASSWORD},
        auth="basic",
    ) as o:
        yield o


@pytest.fixture
def api(orch):
    with httpx.Client(base_url=orch.url + PREFIX, timeout=30) as client:
        yield client


@pytest.fixture
def admin(api) -> str:
    return login(api, "admin", ADMIN_PASSWORD)["access_token"]
