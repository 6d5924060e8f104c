"""POST/GET /graphql: the schema generated from the bundled examples."""

from __future__ import annotations

import pytest


def gql(server, query: str, variables: dict | None = None, **kw):
    with server.client() as c:
        return c.post("/graphql", json={"query": query, "variables": variables or {}}, **kw)


def _fields(server, type_name: str) -> dict[str, dict]:
    q = """query($t: String!) { __type(name: $t) { fields { name description
        args { name type { kind name ofType { name } } } type { kind name ofType { name kind } } } } }"""
    doc = gql(server, q, {"t": type_name}).json()
    return {f["name"]: f for f in doc["data"]["__type"]["fields"]}


def test_naming_rules_and_operations(example_server):
    queries = _fields(example_server, "Query")
    mutations = _fields(example_server, "Mutation")
    assert "counter" in queries and "getCounter" not in queries  # get prefix stripped
    assert "updateCounter" in mutations and "updateCounter" not in queries
    assert {"greet", "countVowels", "shout", "reverse", "wordCount", "rot13", "echo", "noop"} <= set(queries)


def test_untyped_function_is_string_to_string(example_server):
    shout = _fields(example_server, "Query")["shout"]
    assert shout["args"] == [{"name": "input", "type": {"kind": "SCALAR", "name": "String", "ofType": None}}]
    assert shout["type"] == {"kind": "SCALAR", "name": "String", "ofType": None}


def test_typed_signature_and_descriptions(example_server):
    greet = _fields(example_server, "Query")["greet"]
    assert greet["description"].startswith("Greets someone")
    assert greet["args"][0]["name"] == "name"
    assert greet["args"][0]["type"]["kind"] == "NON_NULL"
    stats = _fields(example_server, "TextStats")
    assert set(stats) == {"bytes", "words", "lines"}


def test_query_returns_data_and_logs_in_extensions(example_server):
    r = gql(example_server, '{ greet(name: "Zed") stats: wordCount(text: "a b") { words } }')
    assert r.status_code == 200
    doc = r.json()
    assert doc["data"] == {"greet": "Hello, Zed!", "stats": {"words": 2}}
    inv = doc["extensions"]["invocations"]
    assert inv["greet"]["logs"] == [{"level": "info", "message": "greeting Zed"}]
    assert inv["greet"]["plugin"] == "hello-as"
    assert inv["stats"]["logs"] == [{"level": "info", "message": "counted 2 words in 3 bytes"}]
    assert len(inv["greet"]["executionId"]) == 36


def test_variables_and_mutation(example_server):
    r = gql(example_server, "query($t: String!) { countVowels(text: $t) { vowels length } }", {"t": "aeiXY"})
    assert r.json()["data"] == {"countVowels": {"vowels": 3, "length": 5}}
    before = gql(example_server, "{ counter }").json()["data"]["counter"]
    after = gql(example_server, "mutation { updateCounter }").json()["data"]["updateCounter"]
    assert after == before + 1


def test_function_error_becomes_graphql_error_with_path(example_server):
    doc = gql(example_server, '{ greet(name: "") shout(input: "ok") }').json()
    assert doc["data"] is None  # greet is String!, so its failure nulls the whole result
    [error] = doc["errors"]
    assert error["message"] == "name must not be empty"
    assert error["path"] == ["greet"]
    assert error["extensions"]["kind"] == "GuestError"


def test_invalid_query_is_400(example_server):
    r = gql(example_server, "{ nosuchfield }")
    assert r.status_code == 400
    assert "nosuchfield" in r.json()["errors"][0]["message"]
    with example_server.client() as c:
        assert c.post("/graphql", content=b"not json").status_code == 400


def test_get_serves_explorer_and_runs_queries(example_server):
    with example_server.client() as c:
        page = c.get("/graphql", headers={"accept": "text/html"})
        script = c.get("/console/assets/explorer.js")
        query = c.get("/graphql", params={"query": '{ shout(input: "x") }'})
        mutation = c.get("/graphql", params={"query": "mutation { updateCounter }"})
    # the explorer (GraphiQL) is served by the node itself: nothing from a CDN
    assert (
        page.status_code == 200 and "/console/assets/explorer.js" in page.text and "https://" not in page.text
    )
    assert script.status_code == 200 and b"graphiql" in script.content.lower()
    assert query.json()["data"] == {"shout": "X!"}
    assert mutation.status_code == 405


@pytest.mark.parametrize("content_type", ["application/graphql"])
def test_raw_graphql_body(example_server, content_type):
    with example_server.client() as c:
        r = c.post("/graphql", content=b'{ rot13(text: "uryyb") }', headers={"content-type": content_type})
    assert r.json()["data"] == {"rot13": "hello"}
