"""Extism features an unmodified PDK plugin relies on: Config, Var, logging levels."""

from __future__ import annotations

import shutil

from support import HELLO_AS, ModrunServer, copy_plugin, wait_until


def test_config_from_the_manifest_and_hot_reload(app_dir, storage):
    shutil.copy(HELLO_AS, app_dir / "hello.wasm")
    manifest = app_dir / "modrun.json"
    manifest.write_text(
        '{\n  // greeting for the hello plugin\n  "plugins": {"hello": {"config": {"greeting": "Hi"}}},\n}'
    )
    with ModrunServer(app_dir, storage, "--refresh", "100ms") as server, server.client() as c:
        assert c.post("/functions/greet", content="Al").text == "Hi, Al!"
        manifest.write_text('{"plugins": {"hello": {"config": {"greeting": "Howdy"}}}}')
        wait_until(lambda: c.post("/functions/greet", content="Al").text == "Howdy, Al!", what="new config")

        manifest.write_text('{"plugins": {"hello": {"config": {"greeting": ["not", "closed"]')
        health = wait_until(lambda: (h := c.get("/health").json())["loadErrors"] and h, what="manifest error")
        assert health["loadErrors"]["manifest"].startswith(f"{manifest}:1:")
        assert "invalid JSON" in health["loadErrors"]["manifest"]
        assert (
            c.post("/functions/greet", content="Al").text == "Howdy, Al!"
        )  # previous manifest still in force

        manifest.write_text('{"plugins": {"hello": {"config": {"greeting": "Yo"}, "colour": "red"}}}')
        health = wait_until(
            lambda: "colour" in str(c.get("/health").json()["loadErrors"]) and c.get("/health").json(),
            what="validation error",
        )
        assert "$.plugins.hello.colour" in health["loadErrors"]["manifest"]


def test_vars_are_per_plugin_and_reset_by_reload(app_dir, storage):
    copy_plugin(HELLO_AS, app_dir, "one")
    copy_plugin(HELLO_AS, app_dir, "two")
    with ModrunServer(app_dir, storage, "--refresh", "100ms") as server, server.client() as c:
        for _ in range(3):
            c.post("/functions/one/updateCounter")
        c.post("/functions/two/updateCounter")
        assert c.post("/functions/one/getCounter").text == "3"
        assert c.post("/functions/two/getCounter").text == "1"
        sha = {p["name"]: p["sha256"] for p in c.get("/health").json()["plugins"]}["one"]
        from modrun.plugins.wasmbin import append_custom_section

        (app_dir / "one.wasm").write_bytes(append_custom_section(HELLO_AS.read_bytes(), "v", b"2"))
        wait_until(
            lambda: {p["name"]: p["sha256"] for p in c.get("/health").json()["plugins"]}["one"] != sha,
            what="reload of one",
        )
        assert c.post("/functions/one/getCounter").text == "0"
        assert c.post("/functions/two/getCounter").text == "1"


def test_log_level_filters_plugin_logs(app_dir, storage):
    shutil.copy(HELLO_AS, app_dir / "hello.wasm")
    query = {"query": "mutation { updateCounter }"}
    with ModrunServer(app_dir, storage, "--noreload", "--logLevel", "debug") as server, server.client() as c:
        logs = c.post("/graphql", json=query).json()["extensions"]["invocations"]["updateCounter"]["logs"]
    assert logs == [{"level": "debug", "message": "counter is now 1"}]
    with ModrunServer(app_dir, storage, "--noreload", "--logLevel", "info") as server, server.client() as c:
        logs = c.post("/graphql", json=query).json()["extensions"]["invocations"]["updateCounter"]["logs"]
    assert logs == []
