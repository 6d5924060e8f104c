"""Helpers for control-plane tests: a real orchestrator, logins, users."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import httpx

ADMIN_PASSWORD = "correct horse battery"


def basic(login: str, password: str) -> dict:
    return {"authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def login(api: httpx.Client, name: str, password: str) -> dict:
    r = api.get("/user/login", headers=basic(name, password))
    assert r.status_code == 200, r.text
    return r.json()


def new_user(api: httpx.Client, admin_token: str, name: str | None = None) -> tuple[str, str]:
    name = name or f"u{uuid.uuid4().hex[:10]}"
    r = api.post(
        "/user/create",
        headers=bearer(admin_token),
        json={"username": name, "email": f"{name}@example.com", "password": "pw-" + name},
    )
    assert r.status_code == 201, r.text
    return r.json()["user_id"], login(api, name, "pw-" + name)["access_token"]


def in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat().replace("+00:00", "Z")
