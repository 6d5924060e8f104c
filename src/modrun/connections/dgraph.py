"""DQL over Dgraph's HTTP API: query, mutate, alter.

Wire format (Dgraph Alpha HTTP):
* ``POST /query`` with ``application/json`` ``{"query": ..., "variables": {...}}``;
* ``POST /mutate?commitNow=true`` with ``application/json`` ``{"set": [...], "delete": [...]}``;
* ``POST /alter`` with the schema text, or ``{"drop_all": true}`` /
  ``{"drop_attr": "name"}``.
Answers are ``{"data": ..., "extensions": ...}`` or ``{"errors": [{"message": ...}]}``.
A connection ``key`` is sent as the ``Dg-Auth`` header.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from modrun.connections.resolve import DgraphTarget
from modrun.errors import HostFunctionError

TIMEOUT = 30.0


class DgraphConnections:
    def __init__(self, targets: Mapping[str, DgraphTarget]) -> None:
        self.targets = dict(targets)
        self._client = httpx.Client(timeout=TIMEOUT)

    def _post(
        self,
        connection: str,
        path: str,
        content: bytes,
        content_type: str,
        params: dict[str, str] | None = None,
    ) -> Any:
        target = self.targets.get(connection)
        if target is None:
            known = ", ".join(sorted(self.targets)) or "none"
            raise HostFunctionError(f"no dgraph connection named {connection!r} (have: {known})")
        headers = {"Content-Type": content_type}
        if target.key:
            headers["Dg-Auth"] = target.key
        try:
            response = self._client.post(
                f"{target.url}{path}", content=content, headers=headers, params=params
            )
        except httpx.HTTPError as exc:
            raise HostFunctionError(
                f"dgraph {connection}: {type(exc).__name__} reaching {target.url}"
            ) from None
        try:
            doc = response.json()
        except ValueError:
            raise HostFunctionError(
                f"dgraph {connection}: HTTP {response.status_code} with a non-JSON body"
            ) from None
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if errors:
            raise HostFunctionError(f"dgraph {connection}: {errors[0].get('message', errors[0])}")
        if response.status_code >= 400:
            raise HostFunctionError(f"dgraph {connection}: HTTP {response.status_code}")
        return doc.get("data") if isinstance(doc, dict) else doc

    def query(self, connection: str, query: str, variables: Mapping[str, Any] | None = None) -> Any:
        body: dict[str, Any] = {"query": query}
        if variables:
            body["variables"] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in variables.items()}
        return self._post(connection, "/query", json.dumps(body).encode(), "application/json")

    def mutate(self, connection: str, set_: Any = None, delete: Any = None, commit_now: bool = True) -> Any:
        body = {k: v for k, v in (("set", set_), ("delete", delete)) if v is not None}
        if not body:
            raise HostFunctionError("a mutation needs set and/or delete")
        params = {"commitNow": "true"} if commit_now else None
        return self._post(connection, "/mutate", json.dumps(body).encode(), "application/json", params)

    def alter(
        self, connection: str, schema: str | None = None, drop_all: bool = False, drop_attr: str | None = None
    ) -> Any:
        if drop_all:
            return self._post(connection, "/alter", b'{"drop_all": true}', "application/json")
        if drop_attr:
            return self._post(
                connection, "/alter", json.dumps({"drop_attr": drop_attr}).encode(), "application/json"
            )
        if not schema:
            raise HostFunctionError("alter needs schema, dropAll or dropAttr")
        return self._post(connection, "/alter", schema.encode(), "application/dql")

    def close(self) -> None:
        self._client.close()
