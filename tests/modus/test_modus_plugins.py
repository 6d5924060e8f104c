"""Plugins built for the Modus ABI on a real node: detection by the
``modus_metadata`` section, every kind of value the AssemblyScript codec
carries, optional parameters, GraphQL named and typed as Modus does, logs,
errors, models through the manifest, and Extism plugins beside them.

The plugin is tests/modus/plugin (AssemblyScript compiled with
--exportRuntime; its metadata section written by our own compiler transform,
metadata.mjs), built by ``make test-plugins``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
import wasmtime

from support import HELLO_AS, ModrunServer, custom_section

PLUGIN = Path(__file__).resolve().parent / "plugin" / "build" / "modus_test.wasm"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, api_server: str):
    assert PLUGIN.is_file(), f"{PLUGIN} is missing: run `make test-plugins`"
    app = tmp_path_factory.mktemp("modus-app")
    shutil.copy(PLUGIN, app / "modus_test.wasm")
    shutil.copy(HELLO_AS, app / "hello.wasm")  # an Extism plugin beside it
    manifest = {
        "connections": {
            "openai": {"type": "http", "baseUrl": f"{api_server}/v1/"},
            "echo": {"type": "http", "baseUrl": f"{api_server}/echo/", "headers": {"X-Key": "{{KEY}}"}},
            "graph": {
                "type": "http",
                "endpoint": f"{api_server}/echo/graphql",
                "headers": {"X-Key": "{{KEY}}"},
            },
        },
        "models": {
            "chat": {
                "provider": "openai",
                "sourceModel": "gpt-test",
                "connection": "openai",
                "path": "chat/completions",
            }
        },
    }
    (app / "modrun.json").write_text(json.dumps(manifest))
    storage = tmp_path_factory.mktemp("modus-storage")
    # an app secret and a connection's, as a Modus project names them
    env = {"MODUS_APP_GREETING": "bonjour", "MODUS_ECHO_KEY": "k-1", "MODUS_GRAPH_KEY": "k-1"}
    with (
        ModrunServer(app, storage, "--noreload", "--timeout", "2s", env=env) as server,
        server.client() as client,
    ):
        yield server, client


def rest(client: httpx.Client, function: str, args: dict) -> httpx.Response:
    return client.post(f"/functions/{function}", json=args)


def graphql(client: httpx.Client, query: str) -> dict:
    answer = client.post("/graphql", json={"query": query})
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize(
    ("function", "args", "expected"),
    [
        ("add", {"a": 2, "b": -3}, -1),
        ("add64", {"a": 9007199254740993, "b": 1}, 9007199254740994),
        ("addUnsigned", {"a": 4294967295, "b": 255}, 4294967550),
        ("isEven", {"n": 4}, True),
        ("doubled", {"values": [1.5, -2]}, [3.0, -4.0]),
        ("sum", {"values": [1, 2, 2147483647]}, 2147483650),
        ("words", {"text": "a b c"}, ["a", "b", "c"]),
        ("maybeWords", {"text": "a - c"}, ["a", None, "c"]),
        (
            "makePeople",
            {},
            [
                {"name": "Ada", "age": 36, "email": "ada@example.com", "tags": ["math", "engines"]},
                {"name": "Alan", "age": 41, "email": None, "tags": []},
                {"name": "Grace", "age": 85, "email": None, "tags": ["navy"]},
            ],
        ),
        (
            "oldest",
            {
                "people": [
                    {"name": "A", "age": 3, "email": None, "tags": []},
                    {"name": "B", "age": 5, "email": "b@x", "tags": ["t"]},
                ]
            },
            {"name": "B", "age": 5, "email": "b@x", "tags": ["t"]},
        ),
        ("oldest", {"people": []}, None),
        ("countWords", {"text": "x y x"}, [{"key": "x", "value": 2}, {"key": "y", "value": 1}]),
        (
            "squares",
            {"m": [{"key": 2, "value": 1.5}, {"key": -3, "value": 2}]},
            [{"key": 2, "value": 2.25}, {"key": -3, "value": 4.0}],
        ),
        ("nextDay", {"d": "2024-02-28T12:00:00Z"}, "2024-02-29T12:00:00.000Z"),
    ],
)
def test_values_of_every_kind_round_trip(node, function, args, expected):
    _server, client = node
    answer = rest(client, function, args)
    assert answer.status_code == 200, answer.text
    assert answer.json() == expected


def test_strings_bytes_and_the_guests_own_defaults(node):
    _server, client = node
    assert rest(client, "sayHello", {}).text == "Hello, World!"
    assert rest(client, "sayHello", {"name": "Ada"}).text == "Hello, Ada!"
    assert rest(client, "sayHello", {"name": "Zoë 🌍"}).text == "Hello, Zoë 🌍!"
    assert rest(client, "scale", {"x": 1.5}).json() == 3.0  # factor's default (2) is the guest's
    assert rest(client, "scale", {"x": 1.5, "factor": 3}).json() == 4.5
    assert rest(client, "reverseBytes", {"data": "AQID"}).content == b"\x03\x02\x01"
    assert rest(client, "bufferLength", {"buf": "AQIDBA=="}).json() == 4
    assert rest(client, "describe", {"person": {"name": "Ada", "age": 36, "tags": ["x"]}}).text == (
        "Ada (36, no email, x)"
    )


def test_maps_the_host_writes_are_hashed_as_assemblyscript_does(node):
    _server, client = node
    keys = ["alpha", "b", "a key longer than sixteen characters", "é"]
    pairs = [{"key": k, "value": str(i)} for i, k in enumerate(keys)]
    assert rest(client, "lookup", {"m": pairs, "keys": [*keys, "missing"]}).text == "0,1,2,3,?"


def test_bad_input_gets_a_clear_error_and_the_node_keeps_serving(node):
    _server, client = node
    for args, message in [
        ({"a": "x", "b": 1}, "a must be Int"),
        ({"a": 2**31, "b": 1}, "a must be Int"),
        ({"a": 1}, "b is required"),
        ({"a": 1, "b": 2, "c": 3}, "unknown"),
    ]:
        answer = rest(client, "add", args)
        assert answer.status_code == 400, answer.text
        assert message in answer.json()["error"]
    assert rest(client, "add", {"a": 1, "b": 2}).json() == 3


def test_a_thrown_error_fails_the_call_with_its_message(node):
    _server, client = node
    answer = rest(client, "fail", {"message": "boom"})
    assert answer.status_code == 422, answer.text  # the function failed, as for Extism plugins
    assert answer.json()["kind"] == "GuestError"
    assert answer.json()["error"].startswith("abort: boom (assembly/index.ts:")
    assert rest(client, "isEven", {"n": 3}).json() is False  # a fresh instance: nothing left broken


def test_the_time_limit_stops_a_runaway_function(node):
    _server, client = node
    answer = rest(client, "spin", {"n": 1})
    assert answer.status_code == 504, answer.text
    assert answer.json()["kind"] == "CallTimeout"
    assert rest(client, "add", {"a": 1, "b": 1}).json() == 2


def test_a_fast_function_that_turns_slow_is_not_cut_short(node):
    """After a few fast calls a function runs inline on the event loop with a
    short budget; a call past that budget must be run again on a thread with
    the full time limit, not fail."""
    _server, client = node
    for _ in range(8):
        assert rest(client, "busy", {"n": 10}).status_code == 200
    slow = rest(client, "busy", {"n": 30_000_000})  # some 50-100 ms of wasm
    assert slow.status_code == 200, slow.text


def test_graphql_names_and_types_as_modus_does(node):
    _server, client = node
    # "add..." is a mutation by Modus's naming rules; the rest are queries
    assert graphql(client, 'mutation { add(a: 2, b: 3) add64(a: "5", b: "6") }')["data"] == {
        "add": 5,
        "add64": 11,
    }
    data = graphql(
        client,
        '{ sayHello ada: sayHello(name: "Ada") scale(x: 2) makePeople { name email tags }'
        ' oldest(people: [{name: "A", age: 3, tags: []}]) { name age }'
        ' countWords(text: "x y x") { key value } nextDay(d: "2024-01-01T00:00:00Z") nothing }',
    )["data"]
    assert data == {
        "sayHello": "Hello, World!",
        "ada": "Hello, Ada!",
        "scale": 4.0,
        "makePeople": [
            {"name": "Ada", "email": "ada@example.com", "tags": ["math", "engines"]},
            {"name": "Alan", "email": None, "tags": []},
            {"name": "Grace", "email": None, "tags": ["navy"]},
        ],
        "oldest": {"name": "A", "age": 3},
        "countWords": [{"key": "x", "value": 2}, {"key": "y", "value": 1}],
        "nextDay": "2024-01-02T00:00:00.000Z",
        "nothing": None,
    }
    person = graphql(
        client, '{ __type(name: "Person") { fields { name type { kind name ofType { name } } } } }'
    )["data"]["__type"]["fields"]
    kinds = {f["name"]: (f["type"]["kind"], f["type"]["name"] or f["type"]["ofType"]["name"]) for f in person}
    assert kinds == {
        "name": ("NON_NULL", "String"),
        "age": ("NON_NULL", "Int"),
        "email": ("SCALAR", "String"),
        "tags": ("NON_NULL", None),
    }
    pairs = graphql(
        client, '{ a: __type(name: "StringIntPair") { name } b: __type(name: "IntFloatPair") { name } }'
    )
    assert pairs["data"] == {"a": {"name": "StringIntPair"}, "b": {"name": "IntFloatPair"}}  # Modus's names
    described = graphql(client, "{ __schema { queryType { fields { name description } } } }")
    descriptions = {f["name"]: f["description"] for f in described["data"]["__schema"]["queryType"]["fields"]}
    assert descriptions["sayHello"] == "Says hello, to the world unless a name is given."
    # a class's and a field's doc comments are the type's and the field's descriptions
    typed = graphql(client, '{ __type(name: "Person") { description fields { name description } } }')
    person_docs = typed["data"]["__type"]
    assert person_docs["description"] == "A person, with optional email."
    assert {f["name"]: f["description"] for f in person_docs["fields"]}["name"] == "Their full name."


def test_host_functions_log_tell_the_time_and_call_models(node, api_server):
    _server, client = node
    answer = graphql(client, '{ loudly(message: "hi") }')
    assert answer["data"] == {"loudly": "HI"}
    logs = answer["extensions"]["invocations"]["loudly"]["logs"]
    assert [(line["level"], line["message"]) for line in logs] == [
        ("info", "shouting hi"),
        ("warn", "it is loud"),
    ]
    paris = rest(client, "timeIn", {"tz": "Europe/Paris"}).text
    assert paris[:4].isdigit() and paris.endswith(("+01:00", "+02:00")), paris
    magic, size = rest(client, "zoneData", {"tz": "Europe/Paris", "format": "tzif"}).text.split()
    assert magic == "TZif" and int(size) > 500
    # an unknown zone or format, or a name reaching out of the zone database: no data
    for tz, form in [("Mars/Olympus", "tzif"), ("../../../etc/passwd", "tzif"), ("UTC", "json")]:
        assert rest(client, "zoneData", {"tz": tz, "format": form}).text == "none"
    request = {"messages": [{"role": "user", "content": "ping"}]}
    asked = rest(client, "ask", {"model": "chat", "input": json.dumps(request)})
    assert asked.status_code == 200, asked.text
    assert json.loads(asked.text)["choices"][0]["message"]["content"] == "echo: ping"
    assert rest(client, "modelName", {"model": "chat"}).text == "chat=gpt-test"
    assert rest(client, "secret", {"name": "GREETING"}).text == "bonjour"
    missing = rest(client, "secret", {"name": "NOPE"})
    assert missing.status_code == 502 and "secret 'NOPE' is not set" in missing.json()["error"]
    unknown = rest(client, "ask", {"model": "nope", "input": "{}"})
    assert unknown.status_code == 502 and "no model named 'nope'" in unknown.json()["error"]


def test_host_functions_read_memory_the_guest_grew_during_the_call(node):
    _server, client = node
    answer = graphql(client, "{ bigLog(n: 3000000) }")  # 6 MB of UTF-16: many new pages
    assert answer["data"] == {"bigLog": 3000000}
    [line] = answer["extensions"]["invocations"]["bigLog"]["logs"]
    assert line["message"] == "x" * 3000000


def test_fetch_goes_through_the_manifests_connections_only(node, api_server):
    _server, client = node
    answer = rest(
        client,
        "post",
        {"url": f"{api_server}/echo/hi", "text": "héllo", "headerName": "X-Test", "headerValue": "1"},
    )
    assert answer.status_code == 200, answer.text
    status, _, rest_of = answer.text.partition(": ")
    assert status == "200 OK" and rest_of.endswith("(application/json)")
    echoed = json.loads(rest_of.rsplit(" (", 1)[0])
    assert echoed["path"] == "/echo/hi" and echoed["body"] == "héllo" and echoed["method"] == "POST"
    assert (
        echoed["headers"]["x-test"] == "1" and echoed["headers"]["x-key"] == "k-1"
    )  # the connection's secret
    refused = rest(
        client,
        "post",
        {"url": "http://169.254.169.254/latest", "text": "", "headerName": "a", "headerValue": "b"},
    )
    assert refused.status_code == 502 and "no manifest connection allows this host" in refused.json()["error"]


def test_graphql_requests_go_to_the_connections_endpoint(node):
    _server, client = node
    query = "query($id: ID!) { person(id: $id) { name } }"
    answer = rest(client, "gql", {"connection": "graph", "statement": query, "variables": '{"id": "7"}'})
    assert answer.status_code == 200, answer.text
    echoed = json.loads(answer.text)  # the echo server answers with what it received
    assert echoed["path"] == "/echo/graphql" and echoed["method"] == "POST"
    assert json.loads(echoed["body"]) == {"query": query, "variables": {"id": "7"}}
    assert echoed["headers"]["x-key"] == "k-1"
    unknown = rest(client, "gql", {"connection": "echo", "statement": "{ a }", "variables": ""})
    assert unknown.status_code == 502 and "with an endpoint" in unknown.json()["error"]


def test_extism_and_modus_plugins_side_by_side(node):
    _server, client = node
    assert client.post("/functions/greet", content=b"Ada").text == "Hello, Ada!"
    plugins = {p["name"]: p for p in client.get("/health").json()["plugins"]}
    assert plugins["modus_test"]["abi"] == "modus" and plugins["hello"]["abi"] == "extism"


def test_a_plugin_importing_what_modrun_does_not_provide_is_refused_by_name(tmp_path, storage):
    module = wasmtime.wat2wasm(
        '(module (import "modus_agents" "startAgent" (func (param i32) (result i32)))'
        ' (memory (export "memory") 1) (func (export "run")))'
    )
    metadata = json.dumps({"fnExports": {"run": {"parameters": []}}, "types": {}}).encode()
    section = custom_section("modus_metadata", metadata)
    (tmp_path / "agents.wasm").write_bytes(bytes(module) + section)
    with ModrunServer(tmp_path, storage, "--noreload") as server, server.client() as client:
        errors = client.get("/health").json()["loadErrors"]
    assert errors == {
        "agents": "imports Modus host functions modrun does not provide yet: modus_agents.startAgent"
    }


def test_a_modus_project_directory_is_served_with_its_modus_json(tmp_path, storage, api_server):
    project = tmp_path / "my-modus-app"
    (project / "build").mkdir(parents=True)
    shutil.copy(PLUGIN, project / "build" / "my-modus-app.wasm")
    (project / "modus.json").write_text(
        """{
  "$schema": "https://schema.hypermode.com/modus.json",
  // Modus's own GraphQL endpoint: modrun serves its API itself
  "endpoints": {"default": {"type": "graphql", "path": "/graphql", "auth": "bearer-token"}},
  "connections": {
    "scorer": {"type": "http", "baseUrl": "API/echo/", "headers": {"Authorization": "Bearer {{TOKEN}}"}}
  },
  "models": {
    "my-model": {
      "sourceModel": "org/some-model", "provider": "hugging-face", "connection": "scorer", "path": "score"
    }
  }
}""".replace("API", api_server)
    )
    env = {"MODRUN_SCORER_TOKEN": "tok-9"}
    with ModrunServer(project, storage, "--noreload", env=env) as server, server.client() as client:
        assert client.get("/health").json()["loadErrors"] == {}
        assert rest(client, "add", {"a": 40, "b": 2}).json() == 42
        asked = rest(client, "ask", {"model": "my-model", "input": '{"text": "hi"}'})
        assert asked.status_code == 200, asked.text
        echoed = json.loads(asked.text)
        # Modus posts the guest's JSON as is to the model's connection, with its secrets filled in
        assert echoed["path"] == "/echo/score" and json.loads(echoed["body"]) == {"text": "hi"}
        assert echoed["headers"]["authorization"] == "Bearer tok-9"
        assert rest(client, "modelName", {"model": "my-model"}).text == "my-model=org/some-model"


def test_a_host_function_imported_twice_is_linked_once(tmp_path, storage):
    """The Modus SDK's plugins import modus_system.logMessage more than once."""
    module = wasmtime.wat2wasm(
        '(module (import "modus_system" "logMessage" (func $a (param i32 i32)))'
        ' (import "modus_system" "logMessage" (func $b (param i32 i32)))'
        ' (memory (export "memory") 1)'
        ' (func (export "__new") (param i32 i32) (result i32) i32.const 16)'
        ' (func (export "__pin") (param i32) (result i32) local.get 0)'
        ' (func (export "answer") (result i32) i32.const 42))'
    )
    string = "~lib/string/String"
    metadata = {
        "fnExports": {"answer": {"parameters": [], "results": [{"type": "i32"}]}},
        "fnImports": {
            "modus_system.logMessage": {
                "parameters": [{"name": "level", "type": string}, {"name": "message", "type": string}]
            }
        },
        "types": {},
    }
    section = custom_section("modus_metadata", json.dumps(metadata).encode())
    (tmp_path / "twice.wasm").write_bytes(bytes(module) + section)
    with ModrunServer(tmp_path, storage, "--noreload") as server, server.client() as client:
        assert client.get("/health").json()["loadErrors"] == {}
        assert rest(client, "answer", {}).json() == 42


SQL_DIALECTS = {
    # dialect: (placeholders for two rows, a key column, a missing column's message)
    "postgresql": ("($1, $2), ($3, $4)", "id serial PRIMARY KEY", 'column "nope" does not exist'),
    "mysql": ("(?, ?), (?, ?)", "id int AUTO_INCREMENT PRIMARY KEY", "Unknown column 'nope'"),
}


@pytest.mark.parametrize("dialect", sorted(SQL_DIALECTS))
def test_sql_on_postgresql_and_mysql_connections(tmp_path, storage, request, dialect):
    if dialect == "postgresql":
        db = request.getfixturevalue("postgres").fresh_database("modus_sql")
    else:
        db = request.getfixturevalue("mariadb").dsn
    rows, key, missing = SQL_DIALECTS[dialect]
    mark = "$1" if dialect == "postgresql" else "?"
    shutil.copy(PLUGIN, tmp_path / "modus_test.wasm")
    manifest = {"connections": {"db": {"type": dialect, "connString": db}}}
    (tmp_path / "modrun.json").write_text(json.dumps(manifest))
    with ModrunServer(tmp_path, storage, "--noreload") as server, server.client() as client:

        def sql(statement: str, params: list | None = None, flags: str = "", db_type: str = dialect) -> str:
            args = {"statement": statement, "paramsJson": flags + json.dumps(params or [])}
            answer = rest(client, "sql", {"connection": "db", "dbType": db_type, **args})
            assert answer.status_code == 200, answer.text
            return answer.text

        assert sql("DROP TABLE IF EXISTS people", flags="exec:") == "0 -"
        assert sql(f"CREATE TABLE people ({key}, name text NOT NULL, age int)") == "0 -"
        # the SDK's execute() sends "exec:" before the parameters: no rows wanted
        assert sql(f"INSERT INTO people (name, age) VALUES {rows}", ["Ada", 36, "Alan", 41], "exec:") == "2 -"
        count, found = sql(f"SELECT name, age FROM people WHERE age > {mark} ORDER BY id", [30]).split(" ", 1)
        assert count == "2" and json.loads(found) == [{"name": "Ada", "age": 36}, {"name": "Alan", "age": 41}]
        # a failed statement is the guest's to handle; a parameter stays a parameter
        assert sql("SELECT nope FROM people").startswith(f"error: {dialect} db: {missing}")
        assert (
            sql(f"SELECT count(*) AS n FROM people WHERE name = {mark}", ["x' OR '1'='1"]) == '1 [{"n": 0}]'
        )
        assert sql("SELECT 1 AS one", []) == '1 [{"one": 1}]'
        other = "mysql" if dialect == "postgresql" else "postgresql"
        assert sql("SELECT 1", db_type=other) == f"error: connection 'db' is {dialect}, not {other}"
        assert sql("SELECT 1", flags="exec:{").startswith("error: ")
        elsewhere = {
            "connection": "elsewhere",
            "dbType": dialect,
            "statement": "SELECT 1",
            "paramsJson": "[]",
        }
        assert (
            rest(client, "sql", elsewhere).text
            == "error: no SQL connection named 'elsewhere' in the manifest"
        )
