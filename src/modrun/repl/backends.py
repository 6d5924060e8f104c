"""What the REPL talks to: a local app directory (in-process) or a running node (HTTP)."""

from __future__ import annotations

import json
from typing import Any, Protocol

import httpx

from modrun.api.rest import log_dicts
from modrun.errors import ConfigError, HostFunctionError, ModrunError
from modrun.version import __version__


class Backend(Protocol):
    where: str

    def version(self) -> str: ...
    def models(self) -> list[dict[str, Any]]: ...
    def model(self, name: str) -> dict[str, Any]: ...
    def execute(self, name: str, payload: Any) -> Any: ...
    def functions(self) -> list[dict[str, Any]]: ...
    def call(self, function: str, data: str) -> tuple[str, list[dict[str, str]]]: ...
    def inferences(self, model: str | None, limit: int) -> list[dict[str, Any]]: ...
    def create(self, name: str, spec: dict[str, Any]) -> None: ...
    def modify(self, name: str, changes: dict[str, Any]) -> None: ...
    def delete(self, name: str) -> None: ...
    def close(self) -> None: ...


class LocalBackend:
    """The app directory loaded in this process (models start here too)."""

    def __init__(self, runtime: Any, allow_changes: bool) -> None:
        self.runtime = runtime
        self.node = runtime.node
        self.allow_changes = allow_changes
        self.where = str(self.node.settings.plugins)

    def version(self) -> str:
        return __version__

    def models(self) -> list[dict[str, Any]]:
        from modrun.api.models import _describe

        return [_describe(self.node, name) for name in sorted(self.node.models)]

    def model(self, name: str) -> dict[str, Any]:
        from modrun.api.models import _describe

        if name not in self.node.models:
            raise ConfigError(f"no model named {name!r}")
        return _describe(self.node, name)

    def execute(self, name: str, payload: Any) -> Any:
        return self.node.services.current.models.invoke(name, payload)

    def functions(self) -> list[dict[str, Any]]:
        return self.runtime.functions()

    def call(self, function: str, data: str) -> tuple[str, list[dict[str, str]]]:
        result = self.runtime.invoke(function, data)
        return result.output.decode("utf-8", "replace"), log_dicts(result.logs)

    def inferences(self, model: str | None, limit: int) -> list[dict[str, Any]]:
        from modrun.db.queries import InferenceFilter, list_inferences

        if self.node.history is not None:
            self.node.history.flush(timeout=5)
        return list_inferences(self.node.db, InferenceFilter(model=model), limit)[0]

    def _changes_allowed(self) -> None:
        if not self.allow_changes:
            raise ConfigError(
                "run-time model changes are disabled: start the REPL with "
                "--allow-runtime-changes (or ALLOW_MODEL_SERVER_RUNTIME_CHANGES=true)"
            )

    def _change(self, action: Any, *args: Any) -> None:
        from modrun.db import registry

        self._changes_allowed()
        action(registry, *args)
        self.node.sync_models()

    def create(self, name: str, spec: dict[str, Any]) -> None:
        if self.node.model_sources.get(name) == "manifest":
            raise ConfigError(f"{name!r} is a manifest model; change it in the manifest")
        self._change(lambda r, *a: r.create(self.node.db, *a), name, spec)

    def modify(self, name: str, changes: dict[str, Any]) -> None:
        self._change(lambda r, *a: r.modify(self.node.db, *a), name, changes)

    def delete(self, name: str) -> None:
        self._change(lambda r, *a: r.delete(self.node.db, *a), name)

    def close(self) -> None:
        self.runtime.close()


class HttpBackend:
    """A running ``modrun serve`` at ``url``."""

    def __init__(self, url: str) -> None:
        self.where = url.rstrip("/")
        self.client = httpx.Client(base_url=self.where, timeout=120)

    def _json(self, response: httpx.Response) -> Any:
        try:
            doc = response.json()
        except ValueError:
            raise ModrunError(f"HTTP {response.status_code} from {self.where}") from None
        if response.status_code >= 400:
            raise ModrunError(doc.get("error") if isinstance(doc, dict) else str(doc))
        return doc

    def version(self) -> str:
        return self._json(self.client.get("/health"))["version"]

    def models(self) -> list[dict[str, Any]]:
        return self._json(self.client.get("/models"))["models"]

    def model(self, name: str) -> dict[str, Any]:
        return self._json(self.client.get(f"/models/{name}"))

    def execute(self, name: str, payload: Any) -> Any:
        try:
            return self._json(self.client.post(f"/models/{name}/invoke", json=payload))["result"]
        except ModrunError as exc:
            raise HostFunctionError(str(exc)) from None

    def functions(self) -> list[dict[str, Any]]:
        return self._json(self.client.get("/functions"))["functions"]

    def call(self, function: str, data: str) -> tuple[str, list[dict[str, str]]]:
        r = self.client.post(f"/functions/{function}", content=data.encode())
        if r.status_code >= 400:
            doc = r.json()
            raise ModrunError(f"{doc.get('error')}")
        return r.text, []

    def inferences(self, model: str | None, limit: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if model:
            params["model"] = model
        return self._json(self.client.get("/inferences", params=params))["inferences"]

    def create(self, name: str, spec: dict[str, Any]) -> None:
        self._json(self.client.post("/models", json={"name": name, **spec}))

    def modify(self, name: str, changes: dict[str, Any]) -> None:
        self._json(self.client.put(f"/models/{name}", json=changes))

    def delete(self, name: str) -> None:
        self._json(self.client.delete(f"/models/{name}"))

    def close(self) -> None:
        self.client.close()


def parse_json(text: str) -> Any:
    """The REPL's argument: JSON if it parses, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text
