"""POST /functions/{name} and GET /functions on the bundled examples."""

from __future__ import annotations

import concurrent.futures
import json

import httpx


def test_untyped_function_takes_and_returns_text(example_server):
    with example_server.client() as c:
        r = c.post("/functions/shout", content="hello")
    assert r.status_code == 200
    assert r.text == "HELLO!"
    assert r.headers["content-type"].startswith("text/plain")


def test_typed_text_function_and_json_output(example_server):
    with example_server.client() as c:
        greet = c.post("/functions/greet", content="Ann")
        stats = c.post("/functions/wordCount", content="one two\nthree")
    assert greet.text == "Hello, Ann!"
    assert stats.status_code == 200
    assert stats.headers["content-type"] == "application/json"
    assert stats.json() == {"bytes": 13, "words": 3, "lines": 2}


def test_unicode_round_trip(example_server):
    with example_server.client() as c:
        r = c.post("/functions/reverse", content="añb€😀".encode())
    assert r.content.decode() == "😀€bña"


def test_guest_error_is_json_with_function_and_plugin(example_server):
    with example_server.client() as c:
        r = c.post("/functions/greet", content="")
    assert r.status_code == 422
    assert r.json() == {
        "error": "name must not be empty",
        "function": "greet",
        "plugin": "hello-as",
        "kind": "GuestError",
    }


def test_assemblyscript_abort_reports_its_message(example_server):
    with example_server.client() as c:
        r = c.post("/functions/checkedDivide", content="1/0")
    assert r.status_code == 422
    assert "division by zero" in r.json()["error"]


def test_unknown_function_is_404(example_server):
    with example_server.client() as c:
        r = c.post("/functions/doesNotExist", content="x")
        wrong_plugin = c.post("/functions/textkit-c/greet", content="x")
    assert r.status_code == 404
    assert r.json()["error"] == "no function named 'doesNotExist'"
    assert wrong_plugin.status_code == 404


def test_qualified_name_reaches_a_plugins_function(example_server):
    with example_server.client() as c:
        r = c.post("/functions/textkit-c/rot13", content="abc")
    assert r.text == "nop"


def test_get_on_a_function_says_to_post(example_server):
    with example_server.client() as c:
        r = c.get("/functions/greet")
    assert r.status_code == 405


def test_function_listing_has_plugin_signature_description(example_server):
    with example_server.client() as c:
        doc = c.get("/functions").json()
    by_name = {f["name"]: f for f in doc["functions"]}
    assert by_name["greet"]["plugin"] == "hello-as"
    assert by_name["greet"]["signature"] == "greet(name: String!): String!"
    assert "greeting" in by_name["greet"]["description"]
    assert by_name["shout"]["signature"] == "shout(input: String): String"
    assert by_name["wordCount"]["signature"] == "wordCount(text: String!): TextStats!"
    assert by_name["updateCounter"]["graphql"] == {"operation": "mutation", "field": "updateCounter"}
    assert by_name["getCounter"]["graphql"] == {"operation": "query", "field": "counter"}
    assert doc["conflicts"] == []


def test_large_input_round_trips(example_server):
    payload = bytes(range(97, 123)) * (6 * 1024 * 1024 // 26)  # ~6 MiB of text
    with example_server.client(timeout=60) as c:
        r = c.post("/functions/echo", content=payload)
    assert r.status_code == 200
    assert r.content == payload


def test_concurrent_calls_get_their_own_results(example_server):
    def call(i: int) -> tuple[int, str]:
        with httpx.Client(base_url=example_server.url, timeout=30) as c:
            return i, c.post("/functions/reverse", content=f"item-{i}").text

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(call, range(200)))
    for i, text in results:
        assert text == f"item-{i}"[::-1]


def test_counter_var_persists_across_calls(example_server):
    with example_server.client() as c:
        first = int(c.post("/functions/updateCounter").text)
        second = int(c.post("/functions/updateCounter").text)
        read = int(c.post("/functions/getCounter").text)
    assert second == first + 1
    assert read == second


def test_invalid_json_input_is_400(tmp_path, storage, examples_dir):
    from support import ModrunServer

    schema = {
        "version": 1,
        "functions": {"echo": {"params": {"name": "String!", "age": "Int"}, "returns": "JSON"}},
    }
    app = tmp_path / "app"
    app.mkdir()
    (app / "jsonecho.wasm").write_bytes((examples_dir / "textkit-c/build/release.wasm").read_bytes())
    (app / "jsonecho.schema.json").write_text(json.dumps(schema))
    with ModrunServer(app, storage, "--noreload") as server, server.client() as c:
        ok = c.post("/functions/echo", json={"name": "x", "age": 3})
        missing = c.post("/functions/echo", json={"age": 3})
        wrong = c.post("/functions/echo", json={"name": "x", "age": "old"})
        extra = c.post("/functions/echo", json={"name": "x", "shoe": 9})
        garbage = c.post("/functions/echo", content=b"{not json")
    assert ok.status_code == 200 and ok.json() == {"name": "x", "age": 3}
    assert missing.status_code == 400 and missing.json()["error"] == "name is required"
    assert wrong.status_code == 400 and wrong.json()["error"] == "age must be Int"
    assert extra.status_code == 400 and "unknown field shoe" in extra.json()["error"]
    assert garbage.status_code == 400 and garbage.json()["kind"] == "InvalidInput"


def test_input_over_the_limit_is_413(tmp_path, storage, examples_dir):
    from support import ModrunServer

    with (
        ModrunServer(examples_dir, storage, "--noreload", "--maxInput", "1KiB") as server,
        server.client() as c,
    ):
        r = c.post("/functions/echo", content=b"x" * 2048)
        ok = c.post("/functions/echo", content=b"x" * 1024)
    assert r.status_code == 413
    assert "1024-byte limit" in r.json()["error"]
    assert ok.status_code == 200
