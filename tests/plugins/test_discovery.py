"""Where plugins are found: .wasm files, source roots, parents of roots, one file."""

from __future__ import annotations

import os
import shutil

from support import HELLO_AS, TEXTKIT_C, ModrunServer, run_cli


def _names(server) -> set[str]:
    with server.client() as c:
        return {p["name"] for p in c.get("/health").json()["plugins"]}


def test_directory_of_wasm_files(app_dir, storage):
    shutil.copy(TEXTKIT_C, app_dir / "text.wasm")
    shutil.copy(HELLO_AS, app_dir / "hello.wasm")
    (app_dir / "notes.txt").write_text("not a plugin")
    with ModrunServer(app_dir, storage, "--noreload") as server:
        assert _names(server) == {"text", "hello"}


def test_source_root_uses_the_newest_build(app_dir, storage):
    root = app_dir / "myplugin"
    (root / "build").mkdir(parents=True)
    shutil.copy(HELLO_AS, root / "build" / "release.wasm")
    shutil.copy(TEXTKIT_C, root / "build" / "debug.wasm")
    os.utime(root / "build" / "release.wasm", (1_000_000, 1_000_000))
    result = run_cli("call", "rot13", "abc", "--plugins", str(root), "--storagePath", str(storage))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"nop"  # debug.wasm (textkit) is newer


def test_parent_of_source_roots_names_plugins_by_folder(examples_dir, storage):
    with ModrunServer(examples_dir, storage, "--noreload") as server:
        assert _names(server) == {"hello-as", "textkit-c", "connect-as", "chat-as"}


def test_single_wasm_file(storage):
    result = run_cli("call", "reverse", "abc", "--plugins", str(TEXTKIT_C), "--storagePath", str(storage))
    assert result.stdout == b"cba"


def test_sidecar_schema_overrides_embedded_one(app_dir, storage):
    shutil.copy(TEXTKIT_C, app_dir / "t.wasm")
    (app_dir / "t.schema.json").write_text(
        '{"version": 1, "functions": {"reverse": {"description": "from the sidecar",'
        ' "params": {"s": "String!"}, "input": "text", "returns": "String!"}}}'
    )
    with ModrunServer(app_dir, storage, "--noreload") as server, server.client() as c:
        fns = {f["name"]: f for f in c.get("/functions").json()["functions"]}
    assert fns["reverse"]["description"] == "from the sidecar"
    assert fns["reverse"]["signature"] == "reverse(s: String!): String!"
    assert fns["rot13"]["typed"] is False  # only the sidecar counts, and it does not describe rot13


def test_malformed_schema_is_a_load_error_naming_the_path(app_dir, storage):
    shutil.copy(TEXTKIT_C, app_dir / "t.wasm")
    (app_dir / "t.schema.json").write_text('{"functions": {"reverse": {"returns": "Nope!"}}}')
    shutil.copy(HELLO_AS, app_dir / "good.wasm")
    with ModrunServer(app_dir, storage, "--noreload") as server, server.client() as c:
        health = c.get("/health").json()
    assert health["status"] == "degraded"
    assert health["loadErrors"]["t"] == "invalid schema: functions.reverse.returns: unknown type 'Nope'"
    assert [p["name"] for p in health["plugins"]] == ["good"]


def test_plugin_importing_unknown_host_function_is_reported(app_dir, storage):
    from wasmtime import wat2wasm

    (app_dir / "odd.wasm").write_bytes(
        wat2wasm(
            '(module (import "extism:host/user" "launch_rockets" (func (param i64) (result i64)))'
            ' (func (export "go") (result i32) (i32.const 0)))'
        )
    )
    with ModrunServer(app_dir, storage, "--noreload") as server, server.client() as c:
        errors = c.get("/health").json()["loadErrors"]
    assert errors == {
        "odd": "imports host functions modrun does not provide: extism:host/user.launch_rockets"
    }
