"""modrun's own host functions take one JSON request and answer one JSON envelope.

Request and answer are kernel blocks (i64 handles, like every Extism user host
function). The answer is ``{"result": ...}`` on success or ``{"error": "..."}``
on failure, so a guest in any language handles failures without trapping.
Failures are also written to the call's logs at warn level.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from modrun.errors import HostFunctionError
from modrun.redact import REDACTOR
from modrun.wasm.host import GuestCall, HostFunction, LogLine
from modrun.wasm.kernel import USER_MODULE

Handler = Callable[[Any, dict[str, Any], GuestCall], Any]


def _answer(call: GuestCall, name: str, handler: Handler, handle: int) -> int:
    try:
        try:
            request = json.loads(call.read(handle) or b"{}")
        except ValueError as exc:
            raise HostFunctionError(f"request is not JSON: {exc}") from None
        if not isinstance(request, dict):
            raise HostFunctionError("request must be a JSON object")
        services = getattr(call, "services", None)
        if services is None:
            raise HostFunctionError("no connections are configured")
        doc: dict[str, Any] = {"result": handler(services.current, request, call)}
    except HostFunctionError as exc:
        message = REDACTOR.scrub(exc.message)
        call.state.log(LogLine("warn", f"{name}: {message}"))
        doc = {"error": message}
    return call.write(json.dumps(doc, separators=(",", ":"), default=str).encode())


def user_function(name: str, handler: Handler) -> HostFunction:
    return HostFunction(
        USER_MODULE,
        name,
        ("i64",),
        ("i64",),
        lambda call, handle: _answer(call, name, handler, handle),
        effects=True,
    )


def require(request: dict[str, Any], key: str, kind: type | tuple[type, ...] = str) -> Any:
    value = request.get(key)
    if not isinstance(value, kind):
        raise HostFunctionError(f'request needs "{key}"')
    return value
