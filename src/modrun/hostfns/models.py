"""``model_invoke``: call a manifest model by name, JSON in, JSON out.

Request ``{"model": "name", "input": <JSON>}``; result: the model's JSON answer.
"""

from __future__ import annotations

from typing import Any

from modrun.hostfns.envelope import require, user_function
from modrun.models.providers import Caller
from modrun.wasm.host import GuestCall


def _invoke(services: Any, request: dict[str, Any], call: GuestCall) -> Any:
    caller = Caller(call.plugin_name, call.state.function, getattr(call, "build_id", ""))
    return services.models.invoke(require(request, "model"), request.get("input"), caller)


FUNCTIONS = [user_function("model_invoke", _invoke)]
