"""Fetching what a module needs from the orchestrator: its file from the file
store (cached by SHA-256) and the secrets its deployment's owner stored."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

import httpx

from modrun.http.bases import Bases


class FetchError(Exception):
    pass


class FileCache:
    def __init__(self, orchestrator: str, root: Path) -> None:
        self.orchestrators = Bases(orchestrator)
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.http = httpx.Client(timeout=httpx.Timeout(60, connect=5))

    def authorize(self, credential: str) -> None:
        """Fetch as the joined node (its node credential)."""
        self.http.headers["authorization"] = f"Bearer {credential}"

    def get(self, path: str, sha256: str | None) -> tuple[Path, str]:
        """The file's local copy and digest; downloads unless ``sha256`` is cached."""
        if sha256:
            cached = self.root / f"{sha256}.wasm"
            if cached.is_file():
                return cached, sha256
        try:
            return self.orchestrators.request(lambda base: self._download(base, path, sha256))
        except httpx.HTTPError as exc:
            raise FetchError(f"fetching {path!r}: {exc}") from None

    def _download(self, base: str, path: str, sha256: str | None) -> tuple[Path, str]:
        url = f"{base}/api/files/{quote(path)}"
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, self.http.stream("GET", url) as response:
                if response.status_code == 404:
                    raise FetchError(f"file {path!r} is not in the orchestrator's file store")
                if response.status_code != 200:
                    raise FetchError(f"fetching {path!r}: HTTP {response.status_code}")
                for chunk in response.iter_bytes(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            got = digest.hexdigest()
            if sha256 and got != sha256:
                raise FetchError(f"file {path!r} has SHA-256 {got}, the module expects {sha256}")
            target = self.root / f"{got}.wasm"
            os.replace(tmp, target)
            return target, got
        finally:
            Path(tmp).unlink(missing_ok=True)

    def secrets(self, module: str) -> dict[str, str]:
        """The secrets of the deployment ``module`` belongs to (none: ``{}``)."""
        where = f"/api/modules/{quote(module, safe='')}/secrets"
        try:
            answer = self.orchestrators.request(lambda base: self.http.get(base + where))
        except httpx.HTTPError as exc:
            raise FetchError(f"fetching the secrets of module {module}: {exc}") from None
        if answer.status_code != 200:
            raise FetchError(f"fetching the secrets of module {module}: HTTP {answer.status_code}")
        found = answer.json().get("secrets")
        if not isinstance(found, dict):
            raise FetchError(f"fetching the secrets of module {module}: no secrets object")
        return {str(k): str(v) for k, v in found.items()}

    def close(self) -> None:
        self.http.close()
