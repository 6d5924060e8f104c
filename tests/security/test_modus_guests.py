"""A hostile Modus plugin: its metadata and its memory are the attacker's.
Lies about sizes and pointers must end the call with a clear error, never
read outside its memory or take the node down."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import wasmtime

from support import ModrunServer, custom_section

STRING = "~lib/string/String"

# every export returns a pointer the host will read as a string; the header
# before it (class id at ptr-8, size at ptr-4) is whatever the guest wrote
HOSTILE = """(module
  (import "modus_system" "logMessage" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "\\02\\00\\00\\00\\f0\\ff\\ff\\ff")   ;; a string at 72 claiming 4 GiB
  (data (i32.const 128) "\\02\\00\\00\\00\\08\\00\\00\\00")  ;; a string at 136 of 8 bytes
  (func (export "__new") (param i32 i32) (result i32) i32.const 1024)
  (func (export "__pin") (param i32) (result i32) local.get 0)
  (func (export "huge") (result i32) i32.const 72)
  (func (export "outside") (result i32) i32.const 70000)
  (func (export "nullish") (result i32) i32.const 0)
  (func (export "logsOutside") (result i32) (call $log (i32.const 136) (i32.const 99999)) i32.const 136)
  (func (export "hello") (result i32) i32.const 136))"""


def _plugin(directory: Path) -> None:
    returns_string = {"parameters": [], "results": [{"type": STRING}]}
    metadata = {
        "fnExports": {
            name: returns_string for name in ("huge", "outside", "nullish", "logsOutside", "hello")
        },
        "fnImports": {
            "modus_system.logMessage": {
                "parameters": [{"name": "level", "type": STRING}, {"name": "message", "type": STRING}]
            }
        },
        "types": {},
    }
    wasm = bytes(wasmtime.wat2wasm(HOSTILE)) + custom_section("modus_metadata", json.dumps(metadata).encode())
    (directory / "hostile.wasm").write_bytes(wasm)


def test_a_modus_plugin_lying_about_its_memory_gets_an_error_not_a_read_outside_it(tmp_path, storage):
    _plugin(tmp_path)
    with ModrunServer(tmp_path, storage, "--noreload") as server, server.client() as client:
        for function in ("huge", "outside", "logsOutside"):
            answer = client.post(f"/functions/{function}", json={})
            assert answer.status_code == 422, (function, answer.text)
            assert "out of bounds" in answer.json()["error"], answer.text
        # a null pointer for a non-nullable result is the guest's fault, said so
        nullish = client.post("/functions/nullish", json={})
        assert nullish.status_code == 422 and "null pointer" in nullish.json()["error"]
        # the node serves on, and the same plugin's honest function works
        assert client.post("/functions/hello", json={}).status_code == 200
        assert httpx.get(server.url + "/health").json()["status"] == "ok"
