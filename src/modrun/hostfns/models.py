"""``model_invoke``: call a manifest model by name, JSON in, JSON out.

Request ``{"model": "name", "input": <JSON>}``; result: the model's JSON answer.
"""

from __future__ import annotations

from typing import Any

from modrun.hostfns.envelope import require, user_function


def _invoke(services: Any, request: dict[str, Any]) -> Any:
    return services.models.invoke(require(request, "model"), request.get("input"))


FUNCTIONS = [user_function("model_invoke", _invoke)]
