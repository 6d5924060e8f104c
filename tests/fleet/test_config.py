"""Seed 003's config.json, the round-robin policy and create_batch, on a real
orchestrator process."""

from __future__ import annotations

import json
from pathlib import Path

from fleet_support import OrchestratorProcess, RawClient, RawRuntime, envelope
from support import free_port, wait_until


def test_config_json_round_robin_and_batches(mosquitto, tmp_path: Path):
    port = free_port()
    (tmp_path / "mqtt_pwd.txt").write_text("unused\n")
    config = {
        "http": "127.0.0.1",
        "http_port": port,
        "debug": True,
        "realm": "lab",
        "mqtt": "127.0.0.1",
        "mqtt_port": mosquitto.port,
        "use_ssl": False,
        "mqtt_username": "arts",
        "pwd": "mqtt_pwd.txt",
        "log_dir": "logs",
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    orch = OrchestratorProcess(
        tmp_path / "state", "--config", str(tmp_path / "config.json"), "--scheduler", "round-robin", port=port
    )
    orch.args = [a for a in orch.args if a != "--port" and a != str(port)]  # the port comes from config.json
    with orch:
        api = orch.api()
        settings = api.get("/api/config").json()
        assert settings["realm"] == "lab"
        assert settings["mqtt"] == f"mqtt://arts@127.0.0.1:{mosquitto.port}"
        assert api.get("/health").json()["scheduler"] == "round-robin"
        assert (tmp_path / "logs" / "orchestrator.log").is_file()

        a = RawRuntime(mosquitto.port, realm="lab", name="a")
        b = RawRuntime(mosquitto.port, realm="lab", name="b")
        a.register()
        b.register()
        a.keepalive(load={"cpu_percent": 95, "mem_percent": 90})  # least-loaded would avoid a
        b.keepalive(load={"cpu_percent": 0, "mem_percent": 0})
        wait_until(
            lambda: api.get(f"/api/runtimes/{a.uuid}/").json()["load"].get("cpu_percent") == 95, what="load"
        )
        parents = [
            api.post("/api/modules/", json={"name": f"r{i}", "file": "x.wasm"}).json()["parent"]
            for i in range(4)
        ]
        assert parents == [a.uuid, b.uuid, a.uuid, b.uuid]

        user = RawClient(mosquitto.port)
        user.publish(
            "lab/proc/control",
            envelope(
                "create_batch",
                {
                    "parent": "b",
                    "modules": [
                        {"name": "batch1", "file": "x.wasm"},
                        {"name": "batch2", "file": "x.wasm"},
                        {"nofile": 1},
                    ],
                },
            ),
        )
        b.wait_for(
            lambda t, v: isinstance(v, dict) and v.get("data", {}).get("name") == "batch2", what="batch"
        )
        names = [m["name"] for m in api.get("/api/modules/", params={"runtime": "b"}).json()["results"]]
        assert {"batch1", "batch2"} <= set(names)
        user.close()
        a.close()
        b.close()


def test_fleet_state_on_postgresql_survives_a_restart(mosquitto, postgres, tmp_path: Path):
    url = postgres.fresh_database("fleet_state")
    orch = OrchestratorProcess(
        tmp_path / "state",
        "--mqtt",
        mosquitto.url,
        "--db",
        url,
        "--migrate",
        "--keepalive",
        "1s",
        "--keepaliveTimeout",
        "30s",
    )
    with orch:
        api = orch.api()
        rt = RawRuntime(mosquitto.port, name="pg-rt", max_nmodules=1)
        rt.register()
        first = api.post(
            "/api/modules/", json={"name": "pg1", "file": "x.wasm", "args": {"argv": ["a"]}}
        ).json()
        queued = api.post("/api/modules/", json={"name": "pg2", "file": "x.wasm"}).json()
        assert (first["status"], queued["status"]) == ("A", "Q")
    with orch:  # same database, new process
        api = orch.api()
        again = api.get(f"/api/modules/{first['uuid']}/").json()
        assert again["status"] == "A" and again["parent"] == rt.uuid and again["args"] == {"argv": ["a"]}
        assert [m["uuid"] for m in api.get("/api/queued/").json()["results"]] == [queued["uuid"]]
        assert api.get(f"/api/runtimes/{rt.uuid}/").json()["status"] == "A"
        rt.exited(first["uuid"], exit_code=0)
        wait_until(
            lambda: api.get(f"/api/modules/{queued['uuid']}/").json()["status"] == "A", what="dequeued"
        )
        history = api.get(f"/api/modules/{queued['uuid']}/").json()["history"]
        assert [e["status"] for e in history] == ["Q", "A"]
    rt.close()
