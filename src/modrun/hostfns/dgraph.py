"""``dgraph_query``, ``dgraph_mutate``, ``dgraph_alter`` on dgraph connections.

Requests (``connection`` defaults to ``"dgraph"``, the ``--dgraph`` URL):
* query: ``{"query": "...", "variables": {...}}`` -> the ``data`` object;
* mutate: ``{"set": [...], "delete": [...], "commitNow": true}`` -> the ``data`` object (uids);
* alter: ``{"schema": "..."}`` or ``{"dropAll": true}`` or ``{"dropAttr": "name"}``.
"""

from __future__ import annotations

from typing import Any

from modrun.hostfns.envelope import require, user_function


def _connection(request: dict[str, Any]) -> str:
    return request.get("connection") or "dgraph"


def _query(services: Any, request: dict[str, Any], _call: Any) -> Any:
    return services.dgraph.query(_connection(request), require(request, "query"), request.get("variables"))


def _mutate(services: Any, request: dict[str, Any], _call: Any) -> Any:
    return services.dgraph.mutate(
        _connection(request), request.get("set"), request.get("delete"), bool(request.get("commitNow", True))
    )


def _alter(services: Any, request: dict[str, Any], _call: Any) -> Any:
    return services.dgraph.alter(
        _connection(request), request.get("schema"), bool(request.get("dropAll")), request.get("dropAttr")
    )


FUNCTIONS = [
    user_function("dgraph_query", _query),
    user_function("dgraph_mutate", _mutate),
    user_function("dgraph_alter", _alter),
]
