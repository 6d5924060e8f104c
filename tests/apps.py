"""Building an app directory around the bridge test plugin."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx


def make_app(app_dir: Path, bridge_wasm: Path, manifest: dict, name: str = "bridge") -> Path:
    shutil.copy(bridge_wasm, app_dir / f"{name}.wasm")
    (app_dir / "modrun.json").write_text(json.dumps(manifest, indent=2))
    return app_dir


def envelope(client: httpx.Client, function: str, request: dict | str) -> dict:
    body = request if isinstance(request, str) else json.dumps(request)
    r = client.post(f"/functions/{function}", content=body)
    assert r.status_code == 200, r.text
    return json.loads(r.content)


def fetch(client: httpx.Client, request: dict, body: bytes = b"") -> tuple[int, str] | httpx.Response:
    r = client.post("/functions/fetch", content=json.dumps(request).encode() + b"\n" + body)
    if r.status_code != 200:
        return r
    status, _, text = r.text.partition("\n")
    return int(status), text


def received(api_url: str) -> list[dict]:
    return httpx.get(api_url + "/_log").json()
