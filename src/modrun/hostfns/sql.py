"""``sql_query`` and ``sql_execute`` on postgresql and mysql connections.

Request ``{"connection": "db", "statement": "...", "params": [...]}``. Each call
runs in its own transaction. ``sql_query`` answers a list of row objects;
``sql_execute`` answers ``{"rowsAffected": n}`` (plus ``lastInsertId`` on MySQL).
"""

from __future__ import annotations

from typing import Any

from modrun.hostfns.envelope import require, user_function


def _run(query: bool):
    def handler(services: Any, request: dict[str, Any], _call: Any) -> Any:
        return services.sql.run(
            require(request, "connection"),
            require(request, "statement"),
            request.get("params") or [],
            query,
        )

    return handler


FUNCTIONS = [user_function("sql_query", _run(True)), user_function("sql_execute", _run(False))]
