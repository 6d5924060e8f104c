"""A WASI module's file channels stay in its scratch directory.

A file channel names a guest path whose writes are shipped to a topic; its
host file lives under the run's private scratch directory. A path that climbs
(``..``, ``.``, empty segments) is refused when the module is created (400,
nothing stored) and, should a create reach a node some other way, when the
node builds the run (the run never starts, nothing is written outside).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet_support import OrchestratorProcess
from modrun.wasm.command import CommandSpec
from support import TEST_SOURCES, build_wat

CLIMBING = ["/../../escape/out.txt", "/out/../../escape.txt", "/./out.txt", "//out.txt", "/out//x.txt"]


@pytest.fixture(scope="module")
def orch(tmp_path_factory: pytest.TempPathFactory):
    with OrchestratorProcess(tmp_path_factory.mktemp("files") / "orch") as o:
        yield o


@pytest.mark.parametrize("path", CLIMBING)
def test_a_climbing_channel_path_is_refused_at_create(orch, path):
    api = orch.api()
    before = api.get("/api/modules/", params={"status": "all"}).json()["count"]
    answer = api.post(
        "/api/modules/",
        json={"name": "climber", "file": "x.wasm", "channels": [{"path": path, "mode": "w", "topic": "t"}]},
    )
    assert answer.status_code == 400 and "channels" in answer.json()["error"], answer.text
    assert api.get("/api/modules/", params={"status": "all"}).json()["count"] == before


def test_plain_channel_paths_are_still_taken(orch, tmp_path: Path):
    api = orch.api()
    wasm = build_wat(TEST_SOURCES / "sandbox.wat", tmp_path / "m.wasm").read_bytes()
    assert api.put("/api/files/m.wasm", content=wasm).status_code == 201
    channels = [
        {"path": "/out/log.txt", "mode": "w", "topic": "t/log"},
        {"path": "/stdout", "mode": "w", "topic": "t/out"},
        {"path": "stdout", "mode": "w", "topic": "t/out2"},  # SilverLine's own spelling of a stream
    ]
    answer = api.post("/api/modules/", json={"name": "plain", "file": "m.wasm", "channels": channels})
    # taken: with no runtime in this fleet it waits for one (422 no suitable runtime), not a 400 on channels
    assert answer.status_code != 400 and answer.json().get("kind") != "InvalidArgument", answer.text


@pytest.mark.parametrize("path", CLIMBING)
def test_a_node_refuses_the_run_too(path, tmp_path: Path):
    wasm = build_wat(TEST_SOURCES / "sandbox.wat", tmp_path / "m.wasm").read_bytes()
    with pytest.raises(ValueError, match="channel path"):
        CommandSpec(wasm=wasm, argv=["m"], files=[path])
    assert not (tmp_path.parent / "escape").exists()
