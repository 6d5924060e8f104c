"""Hot reload: add, replace, delete and break plugins while the node serves."""

from __future__ import annotations

import os
import threading
import time

import httpx

from modrun.plugins.wasmbin import append_custom_section
from support import HELLO_AS, TEXTKIT_C, ModrunServer, copy_plugin, wait_until


def _fields(client: httpx.Client) -> set[str]:
    doc = client.post("/graphql", json={"query": "{ __schema { queryType { fields { name } } } }"}).json()
    return {f["name"] for f in doc["data"]["__schema"]["queryType"]["fields"]}


def test_add_replace_delete_update_catalog_and_schema(app_dir, storage):
    copy_plugin(TEXTKIT_C, app_dir, "p")
    with ModrunServer(app_dir, storage, "--refresh", "100ms") as server, server.client() as c:
        assert "reverse" in _fields(c)
        copy_plugin(HELLO_AS, app_dir, "q")  # add
        wait_until(lambda: "greet" in _fields(c), what="added plugin in schema")
        assert c.post("/functions/greet", content="A").text == "Hello, A!"

        copy_plugin(HELLO_AS, app_dir, "p")  # replace p: textkit -> hello (clash with q, p sorts first)
        wait_until(lambda: "reverse" not in _fields(c), what="replaced plugin's functions gone")
        assert c.post("/functions/reverse", content="x").status_code == 404
        assert c.post("/functions/greet", content="B").status_code == 200

        os.remove(app_dir / "q.wasm")  # delete
        wait_until(
            lambda: {p["name"] for p in c.get("/health").json()["plugins"]} == {"p"},
            what="deleted plugin unloaded",
        )
        assert c.get("/functions").json()["conflicts"] == []
    assert "unloaded plugin q" in server.log()


def test_corrupt_replacement_keeps_previous_version_serving(app_dir, storage):
    copy_plugin(TEXTKIT_C, app_dir, "p")
    with ModrunServer(app_dir, storage, "--refresh", "100ms") as server, server.client() as c:
        good_sha = c.get("/health").json()["plugins"][0]["sha256"]
        (app_dir / "p.wasm").write_bytes(b"\0asm\x01\0\0\0garbage that is not a module")
        health = wait_until(
            lambda: (h := c.get("/health").json())["loadErrors"] and h, what="load error reported"
        )
        assert health["status"] == "degraded"
        assert "cannot compile" in health["loadErrors"]["p"]
        assert health["plugins"][0]["sha256"] == good_sha
        assert c.post("/functions/reverse", content="ok").text == "ko"

        copy_plugin(TEXTKIT_C, app_dir, "p")  # fixed again
        wait_until(lambda: c.get("/health").json()["status"] == "ok", what="recovery")
    assert "the previous version keeps serving" in server.log()


def test_reload_under_load_fails_no_request(app_dir, storage):
    copy_plugin(TEXTKIT_C, app_dir, "p")
    failures: list[str] = []
    done = 0
    stop = threading.Event()

    def hammer() -> None:
        nonlocal done
        with httpx.Client(base_url=server.url, timeout=30) as c:
            while not stop.is_set():
                r = c.post("/functions/reverse", content="abc")
                if r.status_code != 200 or r.text != "cba":
                    failures.append(f"{r.status_code} {r.text[:200]}")
                done += 1

    with ModrunServer(app_dir, storage, "--refresh", "50ms") as server:
        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            for i in range(10):  # replace the plugin with a byte-different build, repeatedly
                data = append_custom_section(TEXTKIT_C.read_bytes(), "reload", bytes([i]))
                tmp = app_dir / ".p.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, app_dir / "p.wasm")
                time.sleep(0.25)
        finally:
            stop.set()
            for t in threads:
                t.join()
        reloads = server.log().count("reloaded plugin p")
    assert failures == []
    assert done > 100
    assert reloads >= 5
