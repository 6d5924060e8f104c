"""GraphQL cost limits, checked before anything runs: depth, fields (aliases
included), function calls; the calls of one request share one deadline; the
same call limit for Dgraph Lambda batches."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

from support import ModrunServer


def gql(server, query: str, **extra) -> httpx.Response:
    return httpx.post(server.url + "/graphql", json={"query": query, **extra}, timeout=60)


def test_a_flood_of_aliases_is_refused_before_it_runs(example_server):
    query = "{" + " ".join(f'a{i}: greet(name: "x")' for i in range(20_000)) + "}"
    assert len(query) > 400_000
    started = time.monotonic()
    refused = gql(example_server, query)
    assert refused.status_code == 400
    error = refused.json()["errors"][0]
    assert error["extensions"]["kind"] == "QueryTooCostly" and "--graphqlMaxCalls" in error["message"]
    # nothing ran: no invocation was recorded, and the node still answers at once
    assert "data" not in refused.json()
    assert httpx.post(example_server.url + "/functions/greet", content=b"Ada").text == "Hello, Ada!"
    assert time.monotonic() - started < 30  # a sanity bound, not a speed claim (see bench/)


def test_depth_and_field_limits_and_fragment_cycles(example_server):
    deep = "{ __schema { " + "types { fields { type { " * 6 + "name" + " } } }" * 6 + " } }"
    refused = gql(example_server, deep)
    assert refused.status_code == 400 and "--graphqlMaxDepth" in refused.json()["errors"][0]["message"]
    wide = "{ __schema { " + " ".join(f"t{i}: queryType {{ name }}" for i in range(600)) + " } }"
    refused = gql(example_server, wide)
    assert refused.status_code == 400 and "--graphqlMaxFields" in refused.json()["errors"][0]["message"]
    looping = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
    refused = gql(example_server, looping)
    assert refused.status_code == 400 and "spreads itself" in refused.json()["errors"][0]["message"]
    # fragments count where they are spread: two spreads of three calls are six calls
    fragment = 'fragment F on Query { a: greet(name: "a") b: greet(name: "b") c: greet(name: "c") }'
    ok = gql(example_server, "query { ...F ...F } " + fragment)
    assert ok.status_code == 200 and ok.json()["data"]["a"] == "Hello, a!"


def test_limits_are_flags_and_calls_stop_at_the_deadline(tmp_path, sandbox_wasm):
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(sandbox_wasm, app / "sandbox.wasm")
    (tmp_path / "state").mkdir()
    flags = ("--noreload", "--graphqlMaxCalls", "3", "--graphqlMaxDepth", "4", "--timeout", "1s")
    with ModrunServer(app, tmp_path / "state", *flags) as server:
        assert gql(server, "{ a: noop b: noop c: noop }").status_code == 200
        refused = gql(server, "{ a: noop b: noop c: noop d: noop }")
        assert refused.status_code == 400 and "more than 3 times" in refused.json()["errors"][0]["message"]
        # spinning calls are stopped by the request's deadline, each with a clear error
        spun = gql(server, "{ a: spin b: spin c: spin }")
        errors = spun.json()["errors"]
        assert len(errors) == 3 and all("time" in e["message"].lower() for e in errors), errors
        # a Lambda batch is held to the same number of calls
        batch = {"resolver": "Query.noop", "args": {}, "parents": [{"i": i} for i in range(4)]}
        assert httpx.post(server.url + "/graphql-worker", json=batch).status_code == 400


@pytest.mark.parametrize("calls", [1, 50])
def test_default_call_limit_allows_fifty(example_server, calls):
    query = "{" + " ".join(f'a{i}: greet(name: "x")' for i in range(calls)) + "}"
    assert gql(example_server, query).status_code == 200


def test_introspection_queries_pass_the_default_limits(example_server):
    from graphql import get_introspection_query

    full = get_introspection_query(
        descriptions=True, specified_by_url=True, directive_is_repeatable=True, input_value_deprecation=True
    )
    answer = gql(example_server, full)
    assert answer.status_code == 200 and answer.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    # but nesting lists inside introspection still counts
    deep = "{ __schema { types { " + "fields { type { " * 6 + "name" + " } }" * 6 + " } } }"
    assert gql(example_server, deep).status_code == 400
