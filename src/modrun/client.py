"""A Python client for the orchestrator's control plane (``/api/v2``).

    from modrun.client import Client

    client = Client("http://127.0.0.1:8000")
    client.login("admin", "password")
    pushed = client.push("examples/hello-as/build/release.wasm", name="hello")
    key = client.create_key("ci", artifact_ids=[pushed["artifact_id"]], scopes=["invoke"], expires="30d")

Every call raises ``ClientError`` (with the HTTP status and the server's
message) when the orchestrator refuses it.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from modrun.config.units import parse_duration
from modrun.db.times import utc, utc_now
from modrun.http.bases import Bases

CHUNK = 8 * 1024 * 1024
Progress = Callable[[int, int], None]
"""(bytes sent so far, total bytes)."""


class ClientError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} ({status})")
        self.status = status
        self.message = message


class Client:
    def __init__(
        self, url: str, token: str | None = None, api_key: str | None = None, timeout: float = 60
    ) -> None:
        self.url = url.rstrip("/")
        self.bases = Bases(self.url)  # several orchestrators of one fleet: "http://a:8000,http://b:8000"
        self.token = token
        self.api_key = api_key
        self.refresh_token: str | None = None
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        """The credential headers this client sends."""
        if self.api_key:
            return {"x-api-key": self.api_key}
        return {"authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request with this client's credentials; ClientError on a refusal."""
        headers = {**self.auth_headers(), **kwargs.pop("headers", {})}
        return self._raw(method, path, headers=headers, **kwargs)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    # -- users and teams --------------------------------------------------------------

    def signup(self, username: str, email: str, password: str) -> str:
        return self._json(
            "POST", "/user/signup", json={"username": username, "email": email, "password": password}
        )["user_id"]

    def login(self, login: str, password: str) -> dict:
        tokens = self._json("GET", "/user/login", auth=(login, password))
        self.token, self.refresh_token, self.api_key = tokens["access_token"], tokens["refresh_token"], None
        return tokens

    def refresh(self) -> dict:
        tokens = self._json("POST", "/user/refresh", json={"refresh_token": self.refresh_token})
        self.token, self.refresh_token = tokens["access_token"], tokens["refresh_token"]
        return tokens

    def logout(self) -> None:
        self._json("POST", "/user/logout")
        self.token = self.refresh_token = None

    def info(self) -> dict:
        return self._json("GET", "/user/info")

    def users(self) -> list[dict]:
        return self._json("GET", "/user/list")["users"]

    def create_user(self, username: str, email: str, password: str, admin: bool = False) -> str:
        body = {"username": username, "email": email, "password": password, "admin": admin}
        return self._json("POST", "/user/create", json=body)["user_id"]

    def delete_user(self, user_id: str) -> None:
        self._json("DELETE", f"/user/{user_id}")

    def set_admin(self, user_id: str, admin: bool) -> None:
        self._json("POST" if admin else "DELETE", f"/user/{user_id}/admin")

    def create_team(self, name: str) -> dict:
        return self._json("POST", "/team/create", json={"name": name})

    def teams(self) -> list[dict]:
        return self._json("GET", "/team/list")["teams"]

    def delete_team(self, team_id: str) -> None:
        self._json("DELETE", f"/team/{team_id}")

    def add_team_member(self, team_id: str, user_id: str, team_admin: bool = False) -> None:
        self._json("POST", f"/team/{team_id}/{'admins' if team_admin else 'users'}/{user_id}")

    def remove_team_member(self, team_id: str, user_id: str) -> None:
        self._json("DELETE", f"/team/{team_id}/users/{user_id}")

    def remove_team_admin(self, team_id: str, user_id: str) -> None:
        self._json("DELETE", f"/team/{team_id}/admins/{user_id}")

    def team_members(self, team_id: str) -> list[dict]:
        return self._json("GET", f"/team/{team_id}/users")["users"]

    def team_artifacts(self, team_id: str) -> list[dict]:
        return self._json("GET", f"/team/{team_id}/artifacts")["artifacts"]

    # -- API keys ------------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        artifact_ids: Iterable[str] = (),
        all_artifacts: bool = False,
        scopes: Iterable[str] = ("invoke",),
        expires: str | datetime = "30d",
    ) -> dict:
        """``expires``: a datetime, an RFC 3339 string, or a duration from now (``30d``, ``12h``)."""
        body = {
            "name": name,
            "artifact_ids": list(artifact_ids),
            "all_artifacts": all_artifacts,
            "scopes": list(scopes),
            "exp": _expiry(expires),
        }
        return self._json("POST", "/api-key/create", json=body)

    def api_keys(self) -> list[dict]:
        return self._json("GET", "/api-key/list")["keys"]

    def delete_key(self, key_id: str) -> None:
        self._json("POST", "/api-key/delete", json={"api_key_id": key_id})

    # -- artifacts -------------------------------------------------------------------------

    def push(
        self,
        path: str | Path,
        name: str,
        type: str | None = None,
        progress: Progress | None = None,
        chunk_size: int = CHUNK,
    ) -> dict:
        """Upload a ``.wasm`` (plugin), a zip/tar or a directory (bundle, packed as tar.gz)
        in chunks; returns ``{"artifact_id", "version", "sha256"}``."""
        source = Path(path)
        kind = type or ("plugin" if source.suffix == ".wasm" else "bundle")
        stream = _pack(source) if source.is_dir() else open(source, "rb")  # noqa: SIM115
        with stream:
            total = stream.seek(0, os.SEEK_END)
            stream.seek(0)
            upload = self._json("POST", "/artifact/upload", json={"name": name, "type": kind})["token"]
            headers = {"authorization": f"Bearer {upload}"}
            digest = hashlib.sha256()
            sent, index = 0, 0
            while chunk := stream.read(chunk_size):
                digest.update(chunk)
                self._raw("POST", f"/artifact/upload/{index}", content=chunk, headers=headers)
                sent += len(chunk)
                index += 1
                if progress:
                    progress(sent, total)
            return self._raw_json(
                "POST", "/artifact/upload/commit", json={"sha256": digest.hexdigest()}, headers=headers
            )

    def _raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request with only the headers given (upload-token routes use their own)."""
        response = self.bases.request(
            lambda base: self.http.request(method, base + "/api/v2" + path, **kwargs)
        )
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _raw_json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._raw(method, path, **kwargs).json()

    def artifacts(self) -> list[dict]:
        return self._json("GET", "/artifact/list")["artifacts"]

    def artifact(self, artifact_id: str) -> dict:
        return self._json("GET", f"/artifact/{artifact_id}")

    def download(self, artifact_id: str, target: str | Path, version: str | int | None = None) -> Path:
        params = {"version": str(version)} if version is not None else {}
        out = Path(target)
        with self.http.stream(
            "GET",
            f"{self.bases.current}/api/v2/artifact/{artifact_id}/download",
            params=params,
            headers=self.auth_headers(),
        ) as r:
            if r.status_code >= 400:
                r.read()
                raise _error(r)
            digest = hashlib.sha256()
            tmp = out.with_name(out.name + ".part")
            with open(tmp, "wb") as f:
                for chunk in r.iter_bytes(1 << 20):
                    digest.update(chunk)
                    f.write(chunk)
            if digest.hexdigest() != r.headers.get("x-checksum-sha256"):
                tmp.unlink(missing_ok=True)
                raise ClientError(502, "the download does not match its SHA-256")
        os.replace(tmp, out)
        return out

    def delete_artifact(self, artifact_id: str) -> None:
        self._json("DELETE", f"/artifact/{artifact_id}")

    def set_alias(self, artifact_id: str, alias: str, version: int) -> None:
        self._json("POST", f"/artifact/{artifact_id}/alias", json={"alias": alias, "version": version})

    def add_tags(self, artifact_id: str, version: int, tags: list[str]) -> list[str]:
        return self._json("POST", f"/artifact/{artifact_id}/tags", json={"version": version, "tags": tags})[
            "tags"
        ]

    def set_access(self, artifact_id: str, access: str, team_id: str | None = None) -> None:
        self._json("POST", f"/artifact/{artifact_id}/access", json={"access": access, "team_id": team_id})

    def set_default_permission(self, artifact_id: str, permission: str) -> None:
        self._json("POST", f"/artifact/{artifact_id}/default-permission", json={"permission": permission})

    def permissions(self, artifact_id: str) -> dict:
        return self._json("GET", f"/artifact/{artifact_id}/permissions")

    # -- deployments -----------------------------------------------------------------------

    def deploy(
        self,
        artifact_id: str,
        version: int | str | None = None,
        replicas: int | str = 1,
        labels: dict[str, str] | None = None,
        limits: dict | None = None,
    ) -> dict:
        """Deploy a version number or alias (default ``latest``) on ``replicas`` nodes
        (or ``"daemon"``), only on nodes carrying every one of ``labels``; ``limits``
        (``{"timeout": "5s", "max_memory": "64MiB"}``) bound each call."""
        body: dict[str, Any] = {"replicas": replicas}
        if version is not None:
            body["version"] = version
        if labels:
            body["labels"] = labels
        if limits:
            body["limits"] = limits
        return self._json("POST", f"/deploy/{artifact_id}", json=body)

    def deployment(self, artifact_id: str) -> dict:
        return self._json("GET", f"/deploy/{artifact_id}/status")

    def deployments(self) -> list[dict]:
        return self._json("GET", "/deploy/list")["deployments"]

    def deploy_history(self, artifact_id: str) -> list[dict]:
        return self._json("GET", f"/deploy/{artifact_id}/history")["history"]

    def deploy_logs(self, artifact_id: str) -> list[dict]:
        return self._json("GET", f"/deploy/{artifact_id}/logs")["logs"]

    def rollback(self, artifact_id: str) -> dict:
        return self._json("POST", f"/deploy/{artifact_id}/rollback")

    def undeploy(self, artifact_id: str) -> None:
        self._json("DELETE", f"/deploy/{artifact_id}")

    def set_secret(self, artifact_id: str, name: str, value: str) -> dict:
        """Store one of a deployment's secrets (for its manifest's ``{{NAME}}``
        placeholders); the value is never shown again."""
        return self._json(
            "PUT", f"/deploy/{artifact_id}/secrets/{quote(name, safe='')}", json={"value": value}
        )

    def secrets(self, artifact_id: str) -> list[dict]:
        """The names of a deployment's secrets, when and by whom each was set (never values)."""
        return self._json("GET", f"/deploy/{artifact_id}/secrets")["secrets"]

    def delete_secret(self, artifact_id: str, name: str) -> None:
        self._json("DELETE", f"/deploy/{artifact_id}/secrets/{quote(name, safe='')}")

    def artifact_id(self, name: str) -> str:
        """The id of the artifact called ``name`` (among those you can read)."""
        for artifact in self.artifacts():
            if artifact["name"] == name:
                return artifact["id"]
        raise ClientError(404, f"no artifact {name!r} that you can read")

    # -- nodes and quotas -------------------------------------------------------------------

    def create_node_token(self, name: str = "node", exp: str | None = None) -> dict:
        """A join token for ``modrun serve --token`` (admins); ``{"id", "token"}``, shown once."""
        body: dict[str, Any] = {"name": name}
        if exp is not None:
            body["exp"] = exp
        return self._json("POST", "/node-token", json=body)

    def node_tokens(self) -> list[dict]:
        return self._json("GET", "/node-token/list")["tokens"]

    def delete_node_token(self, token_id: str) -> None:
        self._json("DELETE", f"/node-token/{token_id}")

    def nodes(self) -> list[dict]:
        """Every runtime that joined (admins): its uuid, name, when, last use, revoked or not."""
        return self._json("GET", "/node/list")["nodes"]

    def revoke_node(self, runtime: str) -> None:
        """Cut a runtime off for good (admins): its credential is refused everywhere."""
        self._json("DELETE", f"/node/{runtime}")

    def quota(self) -> list[dict]:
        """Your limits and usage, and those of your teams."""
        return self._json("GET", "/quota")["quotas"]

    def get_quota(self, kind: str, subject_id: str) -> dict:
        return self._json("GET", f"/quota/{kind}/{subject_id}")

    def set_quota(self, kind: str, subject_id: str, **limits: int | None) -> dict:
        """``kind`` user or team; limits artifact_bytes, deployments, replicas (None: no limit)."""
        return self._json("POST", f"/quota/{kind}/{subject_id}", json=limits)

    def reset_quota(self, kind: str, subject_id: str) -> dict:
        return self._json("POST", f"/quota/{kind}/{subject_id}", json={"default": True})

    def audit(self, **filters: Any) -> list[dict]:
        return self._json("GET", "/audit", params={k: v for k, v in filters.items() if v is not None})[
            "entries"
        ]


def _error(response: httpx.Response) -> ClientError:
    try:
        message = response.json().get("error", response.text)
    except ValueError:
        message = response.text or response.reason_phrase
    return ClientError(response.status_code, message)


def _expiry(value: str | datetime) -> str:
    if isinstance(value, datetime):
        moment = utc(value)
    elif value and value[0].isdigit() and not value[:4].isdigit():
        days = value.endswith("d")
        seconds = float(value[:-1]) * 86400 if days else parse_duration(value)
        moment = utc_now() + timedelta(seconds=seconds)
    else:
        return value
    return moment.isoformat().replace("+00:00", "Z")


def _pack(directory: Path) -> io.BytesIO:
    """A directory as a tar.gz bundle (its files, relative names, no links)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.is_symlink() and not path.name.startswith(".env"):
                archive.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    buffer.seek(0)
    return buffer
