"""examples/connect-as: the AssemblyScript helper module against real servers."""

from __future__ import annotations

import json
import shutil

from support import CONNECT_AS, EXAMPLES, ModrunServer


def test_helper_module_reaches_model_sql_http_dgraph(app_dir, storage, api_server, postgres, dgraph_server):
    shutil.copy(CONNECT_AS, app_dir / "connect.wasm")
    shutil.copy(EXAMPLES / "connect-as" / "modrun.schema.json", app_dir / "connect.schema.json")
    (app_dir / "modrun.json").write_text(
        json.dumps(
            {
                "connections": {
                    "llm": {"type": "http", "baseUrl": f"{api_server}/v1/"},
                    "notes-db": {"type": "postgresql", "connString": postgres.dsn},
                    "site": {"type": "http", "baseUrl": f"{api_server}/status/"},
                    "dgraph": {"type": "dgraph", "url": dgraph_server},
                },
                "models": {
                    "assistant": {
                        "provider": "openai",
                        "sourceModel": "m",
                        "connection": "llm",
                        "path": "chat/completions",
                    }
                },
            }
        )
    )
    import psycopg

    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS notes")
        conn.execute("CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT)")
    with ModrunServer(app_dir, storage, "--noreload") as server, server.client() as c:
        gql = lambda q: c.post("/graphql", json={"query": q}).json()  # noqa: E731
        asked = gql('{ ask(prompt: "say \\"hi\\"") }')
        added = gql("mutation { addNote(body: \"first 'note'\") }")
        notes = gql("{ notes }")
        status = gql('{ fetchStatus(url: "' + api_server + '/status/418") }')
        people = gql("{ graphPeople }")
        refused = c.post("/functions/fetchStatus", content="http://127.0.0.1:1/")
        bad_model = c.post("/functions/ask", content="x")  # fine: model exists
    assert asked["data"]["ask"]["choices"][0]["message"]["content"] == 'echo: say "hi"'
    assert added["data"]["addNote"] == {"rowsAffected": 1}
    assert notes["data"]["notes"] == [{"id": 1, "body": "first 'note'"}]
    assert status["data"]["fetchStatus"] == 418
    assert "people" in people["data"]["graphPeople"]
    assert refused.status_code == 502 and "refused" in refused.json()["error"]
    assert bad_model.status_code == 200


def test_helper_reports_host_errors_as_function_errors(app_dir, storage):
    shutil.copy(CONNECT_AS, app_dir / "connect.wasm")
    with (
        ModrunServer(app_dir, storage, "--noreload", "--dgraph", "http://127.0.0.1:1") as server,
        server.client() as c,
    ):
        notes = c.post("/functions/getNotes")
        ask = c.post("/functions/ask", content="hi")
        graph = c.post("/functions/graphPeople")
    assert (
        notes.status_code == 422
        and notes.json()["error"] == "no SQL connection named 'notes-db' (manifest has: none)"
    )
    assert ask.json()["error"] == "no model named 'assistant' in the manifest (have: none)"
    assert graph.json()["error"].startswith("dgraph dgraph: ConnectError")
