"""The manifest: validation messages, the legacy hypermode.json, the published JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from apps import fetch, make_app
from modrun.manifest.model import json_schema
from support import REPO, ModrunServer, run_cli, wait_until


def test_published_json_schema_is_current():
    published = json.loads((REPO / "docs" / "manifest.schema.json").read_text())
    assert published == json_schema(), (
        "run: python -c 'from modrun.manifest.model import ...' (see docs/manifest.md)"
    )


def test_legacy_hypermode_json_hosts(app_dir, storage, bridge_wasm, api_server):
    """Seed 000's example: a `hosts` entry and HYPERMODE_<HOST>_<SECRET>."""
    make_app(app_dir, bridge_wasm, {})
    (app_dir / "modrun.json").unlink()
    (app_dir / "hypermode.json").write_text(
        json.dumps(
            {
                "hosts": {
                    "my-api": {
                        "endpoint": f"{api_server}/echo/",
                        "headers": {"Authorization": "Bearer {{AUTH_TOKEN}}"},
                    }
                }
            }
        )
    )
    env = {"HYPERMODE_MY_API_AUTH_TOKEN": "abc123"}
    with ModrunServer(app_dir, storage, "--noreload", env=env) as server, server.client() as c:
        status, text = fetch(c, {"url": f"{api_server}/echo/"})
    assert status == 200
    assert json.loads(text)["headers"]["authorization"] == "Bearer abc123"


def _errors(app_dir: Path, storage: Path, manifest: str) -> str:
    (app_dir / "modrun.json").write_text(manifest)
    with ModrunServer(app_dir, storage, "--noreload") as server:
        return httpx.get(server.url + "/health").json()["loadErrors"]["manifest"]


def test_validation_errors_name_file_path_and_reason(app_dir, storage, bridge_wasm):
    make_app(app_dir, bridge_wasm, {})
    path = app_dir / "modrun.json"
    assert _errors(app_dir, storage, '{"connections": {"db": {"type": "postgresql"}}}') == (
        f"{path}: $.connections.db.connString: Field required"
    )
    assert _errors(app_dir, storage, '{"connections": {"api": {"type": "http", "baseUrl": "ftp://x/"}}}') == (
        f"{path}: $.connections.api: 'ftp://x/' is not an http(s) URL"
    )
    assert _errors(app_dir, storage, '{"models": {"m": {"provider": "openai", "connection": "gone"}}}') == (
        f"{path}: $: models.m.connection: no connection named 'gone'"
    )
    assert _errors(app_dir, storage, '{\n  "plugins": {\n    "x": 5\n  }\n}').startswith(
        f"{path}: $.plugins.x: Input should be"
    )
    assert _errors(
        app_dir, storage, '{"connections": {"bad name!": {"type": "http", "endpoint": "http://a"}}}'
    ) == (
        f"{path}: $: connection name 'bad name!': "
        "use letters, digits and single hyphens, at most 63 characters"
    )


def test_manifest_change_applies_without_restart(app_dir, storage, bridge_wasm, api_server):
    make_app(app_dir, bridge_wasm, {})
    with ModrunServer(app_dir, storage, "--refresh", "100ms") as server, server.client() as c:
        refused = fetch(c, {"url": f"{api_server}/echo/z"})
        assert refused.status_code == 502
        (app_dir / "modrun.json").write_text(
            json.dumps({"connections": {"e": {"type": "http", "baseUrl": f"{api_server}/echo/"}}})
        )
        wait_until(
            lambda: (
                fetch(c, {"url": f"{api_server}/echo/z"}) != refused
                and isinstance(fetch(c, {"url": f"{api_server}/echo/z"}), tuple)
            ),
            what="new connection",
        )


def test_call_cli_reads_the_manifest(app_dir, storage, bridge_wasm):
    make_app(app_dir, bridge_wasm, {"plugins": {"bridge": {"config": {"k": "v"}}}})
    r = run_cli("call", "config", "k", "--plugins", str(app_dir), "--storagePath", str(storage))
    assert r.stdout == b"v"
