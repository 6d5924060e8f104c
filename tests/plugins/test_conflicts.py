"""Two plugins exporting the same name: resolved deterministically, never silently."""

from __future__ import annotations

import shutil

from support import TEXTKIT_C, ModrunServer


def test_clash_is_resolved_by_plugin_name_and_reported(app_dir, storage):
    shutil.copy(TEXTKIT_C, app_dir / "zeta.wasm")
    shutil.copy(TEXTKIT_C, app_dir / "alpha.wasm")
    with ModrunServer(app_dir, storage, "--noreload") as server, server.client() as c:
        listing = c.get("/functions").json()
        plain = c.post("/functions/reverse", content="ab")
        qualified = c.post("/functions/zeta/reverse", content="ab")
        gql = c.post("/graphql", json={"query": '{ reverse(text: "ab") zeta_reverse(text: "cd") }'}).json()
        health = c.get("/health").json()
    log = server.log()

    clashes = {(x["kind"], x["name"]): x for x in listing["conflicts"]}
    rest = clashes[("function", "reverse")]
    assert rest["winner"] == {"plugin": "alpha", "function": "reverse"}
    assert rest["shadowed"] == {"plugin": "zeta", "function": "reverse"}
    assert rest["reachableAs"] == "/functions/zeta/reverse"
    assert clashes[("graphql", "reverse")]["reachableAs"] == "zeta_reverse"

    entries = {(f["plugin"], f["name"]): f for f in listing["functions"]}
    assert entries[("zeta", "reverse")]["shadowed"] is True
    assert entries[("zeta", "reverse")]["path"] == "/functions/zeta/reverse"
    assert entries[("alpha", "reverse")]["shadowed"] is False

    assert plain.headers["content-type"].startswith("text/plain") and plain.text == "ba"
    assert qualified.text == "ba"
    assert gql["data"] == {"reverse": "ba", "zeta_reverse": "dc"}
    assert gql["extensions"]["invocations"]["reverse"]["plugin"] == "alpha"
    assert gql["extensions"]["invocations"]["zeta_reverse"]["plugin"] == "zeta"
    assert any("reverse" in msg for msg in health["conflicts"])
    assert "name clash" in log and "'zeta'" in log


def test_a_name_graphql_cannot_use_is_reported_not_dropped(app_dir, storage):
    from wasmtime import wat2wasm

    (app_dir / "odd.wasm").write_bytes(
        wat2wasm(
            '(module (import "extism:host/env" "output_set" (func $out (param i64 i64)))'
            ' (func (export "to-upper") (result i32) (i32.const 0))'
            ' (func (export "fine") (result i32) (i32.const 0)))'
        )
    )
    with ModrunServer(app_dir, storage, "--noreload") as server, server.client() as c:
        listing = c.get("/functions").json()
        rest = c.post("/functions/to-upper")
        fields = c.post("/graphql", json={"query": "{ __schema { queryType { fields { name } } } }"}).json()
    assert listing["notInGraphQL"] == ["odd.to-upper: not a valid GraphQL name"]
    assert rest.status_code == 200
    assert {f["name"] for f in fields["data"]["__schema"]["queryType"]["fields"]} == {"fine"}
    assert "not in the GraphQL schema: odd.to-upper" in server.log()
