"""Dgraph: the DQL client's wire format, and the /graphql-worker Lambda endpoint."""

from __future__ import annotations

import json
import shutil

import httpx

from apps import envelope, make_app, received
from support import TEXTKIT_C, ModrunServer


def test_query_mutate_alter_wire_format(app_dir, storage, bridge_wasm, dgraph_server):
    manifest = {"connections": {"graph": {"type": "dgraph", "url": dgraph_server, "key": "{{KEY}}"}}}
    make_app(app_dir, bridge_wasm, manifest)
    env = {"MODRUN_GRAPH_KEY": "dg-key-1"}
    with ModrunServer(app_dir, storage, "--noreload", env=env) as server, server.client() as c:
        altered = envelope(c, "dgAlter", {"connection": "graph", "schema": "name: string @index(exact) ."})
        mutated = envelope(c, "dgMutate", {"connection": "graph", "set": [{"uid": "_:ann", "name": "Ann"}]})
        queried = envelope(
            c,
            "dgQuery",
            {
                "connection": "graph",
                "variables": {"$n": "Ann"},
                "query": "query q($n: string) { people(func: eq(name, $n)) { uid name } }",
            },
        )
        broken = envelope(c, "dgQuery", {"connection": "graph", "query": "{ syntax error"})
    assert altered["result"]["code"] == "Success"
    assert mutated["result"]["uids"] == {"ann": "0x1"}
    assert queried["result"] == {"people": [{"name": "Ann", "uid": "0x1"}]}
    assert broken["error"] == "dgraph graph: line 1 column 3: Unrecognized character"
    log = received(dgraph_server)
    alter, mutate, query = log[-4], log[-3], log[-2]
    assert alter["path"] == "/alter" and alter["headers"]["content-type"] == "application/dql"
    assert alter["body"] == "name: string @index(exact) ."
    assert mutate["path"] == "/mutate" and mutate["query"] == "commitNow=true"
    assert json.loads(mutate["body"]) == {"set": [{"uid": "_:ann", "name": "Ann"}]}
    assert query["headers"]["content-type"] == "application/json"
    assert json.loads(query["body"])["variables"] == {"$n": "Ann"}
    assert all(entry["headers"]["dg-auth"] == "dg-key-1" for entry in (alter, mutate, query))


def test_dgraph_flag_is_the_default_connection(app_dir, storage, bridge_wasm, dgraph_server):
    make_app(app_dir, bridge_wasm, {})
    with (
        ModrunServer(app_dir, storage, "--noreload", "--dgraph", dgraph_server) as server,
        server.client() as c,
    ):
        doc = envelope(c, "dgQuery", {"query": "{ everyone(func: has(name)) { name } }"})
    assert "everyone" in doc["result"]


def test_lambda_dispatches_resolvers_to_functions(app_dir, storage, examples_dir):
    shutil.copy(examples_dir / "hello-as/build/release.wasm", app_dir / "hello.wasm")
    shutil.copy(examples_dir / "hello-as/modrun.schema.json", app_dir / "hello.schema.json")
    shutil.copy(TEXTKIT_C, app_dir / "lam.wasm")
    (app_dir / "lam.schema.json").write_text(
        json.dumps(
            {
                "version": 1,
                "functions": {
                    "echo": {"params": {"parents": "JSON"}, "input": "text", "returns": "JSON"},
                    "reverse": {"params": {"parent": "JSON"}, "input": "text", "returns": "String"},
                },
            }
        )
    )
    with ModrunServer(app_dir, storage, "--noreload") as server:
        post = lambda body: httpx.post(server.url + "/graphql-worker", json=body, timeout=30)  # noqa: E731
        greet = post(
            {
                "resolver": "Query.greet",
                "args": {"name": "Dgraph"},
                "authHeader": {"key": "X-Auth", "value": "t"},
            }
        )
        counter = post({"resolver": "Query.counter", "args": {}})
        batch = post({"resolver": "Person.echo", "args": {}, "parents": [{"id": 1}, {"id": 2}]})
        each = post({"resolver": "Person.reverse", "args": {}, "parents": ["ab", "cd"]})
        failing = post({"resolver": "Query.greet", "args": {"name": ""}})
        unknown = post({"resolver": "Query.nothing", "args": {}})
        webhook = post({"resolver": "$webhook", "event": {"operation": "add"}})
    assert greet.json() == "Hello, Dgraph!"
    assert counter.json() == 0
    assert batch.json() == [{"id": 1}, {"id": 2}]
    assert each.json() == ["ba", "dc"]  # a string parent reaches a text function as plain text
    assert failing.status_code == 422 and failing.json()["error"] == "name must not be empty"
    assert unknown.status_code == 400 and "Query.nothing" in unknown.json()["error"]
    assert webhook.status_code == 200
