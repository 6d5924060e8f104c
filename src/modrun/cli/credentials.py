"""The credentials CLI commands send: ``MODRUN_API_KEY``, ``MODRUN_TOKEN``, or
the login ``modrun login`` saved per orchestrator in
``<storagePath>/credentials.json`` (mode 0600)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from modrun.client import Client, ClientError
from modrun.config.defaults import default_storage_path
from modrun.storage.private import write_private


def _credentials_file() -> Path:
    return default_storage_path().expanduser() / "credentials.json"


def _saved() -> dict:
    try:
        return json.loads(_credentials_file().read_text())
    except (OSError, ValueError):
        return {}


def save_login(url: str, tokens: dict) -> None:
    path = _credentials_file()
    data = _saved() | {
        url.rstrip("/"): {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]}
    }
    write_private(path, json.dumps(data))


def client_for(url: str) -> Client:
    """A client with the best credentials at hand: MODRUN_API_KEY, MODRUN_TOKEN, or
    the saved login (refreshed when its access token has expired)."""
    if os.environ.get("MODRUN_API_KEY"):
        return Client(url, api_key=os.environ["MODRUN_API_KEY"])
    if os.environ.get("MODRUN_TOKEN"):
        return Client(url, token=os.environ["MODRUN_TOKEN"])
    saved = _saved().get(url.rstrip("/"))
    client = Client(url, token=saved["access_token"] if saved else None)
    if saved:
        client.refresh_token = saved["refresh_token"]
        try:
            client.info()
        except ClientError as exc:
            if exc.status == 401:
                try:
                    save_login(url, client.refresh())
                except ClientError:
                    pass  # the next call says 401: log in again
    return client
