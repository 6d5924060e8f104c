"""Object types, input types and cross-plugin type names in the generated schema."""

from __future__ import annotations

import json
import shutil

from support import TEXTKIT_C, ModrunServer

PERSON_A = {"fields": {"name": "String!", "age": "Int"}}
PERSON_B = {"fields": {"name": "String!", "email": "String"}}


def _schema(person: dict, fn: str) -> str:
    # `echo` returns its JSON input, so the result mirrors the arguments
    return json.dumps(
        {
            "version": 1,
            "types": {"Person": person, "Echoed": {"fields": {"person": "Person!", "tags": "[String!]"}}},
            "functions": {fn: {"params": {"person": "Person!", "tags": "[String!]"}, "returns": "Echoed!"}},
        }
    )


def test_input_objects_lists_and_per_plugin_types(app_dir, storage):
    for name, person in (("a", PERSON_A), ("b", PERSON_B)):
        shutil.copy(TEXTKIT_C, app_dir / f"{name}.wasm")
        (app_dir / f"{name}.schema.json").write_text(_schema(person, "echo"))
    query = """{
      echo(person: {name: "Ann", age: 7}, tags: ["x", "y"]) { person { name age } tags }
      b_echo(person: {name: "Bo", email: "bo@example.com"}) { person { name email } tags }
    }"""
    with ModrunServer(app_dir, storage, "--noreload") as server, server.client() as c:
        doc = c.post("/graphql", json={"query": query}).json()
        types = c.post("/graphql", json={"query": "{ __schema { types { name kind } } }"}).json()
    assert doc.get("errors") is None, doc
    assert doc["data"]["echo"] == {"person": {"name": "Ann", "age": 7}, "tags": ["x", "y"]}
    assert doc["data"]["b_echo"] == {"person": {"name": "Bo", "email": "bo@example.com"}, "tags": None}
    kinds = {t["name"]: t["kind"] for t in types["data"]["__schema"]["types"]}
    assert kinds["Person"] == "OBJECT" and kinds["PersonInput"] == "INPUT_OBJECT"
    assert kinds["b_Person"] == "OBJECT" and kinds["b_PersonInput"] == "INPUT_OBJECT"
    # Echoed reads the same in both plugins but refers to a different Person in each
    assert kinds["Echoed"] == "OBJECT" and kinds["b_Echoed"] == "OBJECT"


def test_wrong_argument_type_is_rejected_before_calling(app_dir, storage):
    shutil.copy(TEXTKIT_C, app_dir / "a.wasm")
    (app_dir / "a.schema.json").write_text(_schema(PERSON_A, "echo"))
    with ModrunServer(app_dir, storage, "--noreload") as server, server.client() as c:
        r = c.post("/graphql", json={"query": '{ echo(person: {name: "A", age: "old"}) { tags } }'})
        calls = c.get("/metrics").text
    assert r.status_code == 400
    assert "Int cannot represent" in r.json()["errors"][0]["message"]
    assert 'modrun_function_calls_total{function="echo"' not in calls
