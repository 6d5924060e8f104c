"""Where secrets come from, in which order, and that they never leak."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from apps import envelope, fetch, make_app
from support import ModrunServer, wait_until


def _manifest(api_server: str) -> dict:
    return {
        "connections": {
            "my-api": {
                "type": "http",
                "baseUrl": f"{api_server}/echo/",
                "headers": {
                    "Authorization": "Bearer {{AUTH_TOKEN}}",
                    "X-Basic": "Basic {{base64(USER:PASS)}}",
                },
            }
        },
        "plugins": {"bridge": {"config": {"token": "{{TOKEN}}", "plain": "hello"}}},
    }


def _sent(c: httpx.Client, api_server: str) -> dict:
    status, text = fetch(c, {"url": f"{api_server}/echo/x"})
    assert status == 200
    return json.loads(text)["headers"]


@pytest.mark.parametrize(
    ("env", "files", "expected"),
    [
        ({"MODRUN_MY_API_AUTH_TOKEN": "modrun", "HYPERMODE_MY_API_AUTH_TOKEN": "hypermode"}, {}, "modrun"),
        (
            {"HYPERMODE_MY_API_AUTH_TOKEN": "hypermode"},
            {".env": "MODRUN_MY_API_AUTH_TOKEN=dotenv"},
            "hypermode",
        ),
        ({}, {".env": "HYPERMODE_MY_API_AUTH_TOKEN=dotenv"}, "dotenv"),
        ({"MODRUN_MY_API_AUTH_TOKEN": "process"}, {".env": "MODRUN_MY_API_AUTH_TOKEN=dotenv"}, "process"),
    ],
    ids=["modrun-beats-hypermode", "name-order-before-source", "dotenv", "process-beats-dotenv"],
)
def test_lookup_order(env, files, expected, app_dir, storage, bridge_wasm, api_server):
    make_app(app_dir, bridge_wasm, _manifest(api_server))
    for name, text in files.items():
        (app_dir / name).write_text(text + "\n")
    with ModrunServer(app_dir, storage, "--noreload", env=env) as server, server.client() as c:
        assert _sent(c, api_server)["authorization"] == f"Bearer {expected}"


def test_dotenv_files_by_environment_and_hot_reload(app_dir, storage, bridge_wasm, api_server):
    make_app(app_dir, bridge_wasm, _manifest(api_server))
    env = {"ENVIRONMENT": "stage"}
    with ModrunServer(app_dir, storage, "--refresh", "100ms", env=env) as server, server.client() as c:
        assert _sent(c, api_server)["authorization"] == "Bearer"  # missing: empty, reported
        health = c.get("/health").json()
        assert any("{{AUTH_TOKEN}}" in w and "MODRUN_MY_API_AUTH_TOKEN" in w for w in health["warnings"])
        for name in (".env", ".env.local", ".env.stage", ".env.stage.local"):
            (app_dir / name).write_text(f"MODRUN_MY_API_AUTH_TOKEN=from{name}\n")
            wait_until(
                lambda n=name: _sent(c, api_server)["authorization"] == f"Bearer from{n}",
                what=f"{name} to take effect",
            )
        (app_dir / ".env.prod").write_text("MODRUN_MY_API_AUTH_TOKEN=prod-only\n")
        assert _sent(c, api_server)["authorization"] == "Bearer from.env.stage.local"


def test_base64_placeholder_and_plugin_config(app_dir, storage, bridge_wasm, api_server):
    make_app(app_dir, bridge_wasm, _manifest(api_server))
    env = {"MODRUN_MY_API_USER": "ann", "MODRUN_MY_API_PASS": "p:w", "MODRUN_BRIDGE_TOKEN": "plugin-secret"}
    with ModrunServer(app_dir, storage, "--noreload", env=env) as server, server.client() as c:
        assert _sent(c, api_server)["x-basic"] == "Basic " + base64.b64encode(b"ann:p:w").decode()
        assert c.post("/functions/config", content="token").text == "plugin-secret"
        assert c.post("/functions/config", content="plain").text == "hello"


def test_per_model_key(app_dir, storage, bridge_wasm, api_server):
    manifest = {
        "connections": {
            "llm": {
                "type": "http",
                "baseUrl": f"{api_server}/v1/",
                "headers": {"Authorization": "Bearer {{API_KEY}}"},
            }
        },
        "models": {
            "writer": {
                "provider": "openai",
                "sourceModel": "w",
                "connection": "llm",
                "path": "chat/completions",
            }
        },
    }
    make_app(app_dir, bridge_wasm, manifest)
    with (
        ModrunServer(app_dir, storage, "--noreload", env={"HYP_MODEL_KEY_WRITER": "model-key"}) as server,
        server.client() as c,
    ):
        envelope(c, "model", {"model": "writer", "input": {"messages": [{"role": "user", "content": "x"}]}})
    sent = httpx.get(api_server + "/_log").json()[-1]["headers"]
    assert sent["authorization"] == "Bearer model-key"


SECRET = "PLANTED-s3cret-7f3a9c"


def test_a_planted_secret_never_leaks(app_dir, storage, bridge_wasm, api_server):
    manifest = _manifest(api_server)
    manifest["connections"]["llm"] = {
        "type": "http",
        "baseUrl": f"{api_server}/status/",
        "headers": {"Authorization": "Bearer {{API_KEY}}"},
    }
    manifest["models"] = {
        "m": {"provider": "openai", "sourceModel": "x", "connection": "llm", "path": "500", "retries": 1}
    }  # fails, after sending the secret
    make_app(app_dir, bridge_wasm, manifest)
    env = {"MODRUN_MY_API_AUTH_TOKEN": SECRET, "MODRUN_BRIDGE_TOKEN": SECRET, "MODRUN_LLM_API_KEY": SECRET}
    seen: list[str] = []
    with (
        ModrunServer(app_dir, storage, "--noreload", "--logLevel", "debug", env=env) as server,
        server.client() as c,
    ):
        gql = lambda q: c.post("/graphql", json={"query": q}).text  # noqa: E731
        seen.append(gql('{ logConfig(input: "token") }'))  # plugin logs the secret
        seen.append(gql('{ failConfig(input: "token") }'))  # plugin fails with it
        seen.append(c.post("/functions/failConfig", content="token").text)
        seen.append(c.post("/functions/fetch", content=b'{"url": "http://10.255.255.1/?t=x"}').text)
        seen.append(c.post("/functions/model", content=json.dumps({"model": "m", "input": {}})).text)
        seen.append(
            c.post("/graphql-worker", json={"resolver": "Query.failConfig", "args": {"input": "token"}}).text
        )
        seen.extend(c.get(path).text for path in ("/functions", "/health", "/metrics"))
        assert _sent(c, api_server)["authorization"] == f"Bearer {SECRET}"  # it is really used
    seen.append(server.log())
    everything = "\n".join(seen)
    assert SECRET not in everything
    assert "***" in seen[0] and "***" in seen[1]
