"""Extism's outbound HTTP (``http_request``, ``http_status_code``, ``http_headers``).

Requests go through ``modrun.connections.http``: only URLs that match a
manifest http connection are allowed, with its headers and query parameters
added. Any status is passed back to the guest; a refused, failed or timed-out
request fails the call with an error naming the URL the guest asked for.
"""

from __future__ import annotations

import json

from modrun.errors import HostFunctionError
from modrun.wasm.host import GuestCall, HostFunction
from modrun.wasm.kernel import ENV_MODULE


def http_request(call: GuestCall, request: int, body: int) -> int:
    try:
        spec = json.loads(call.read(request))
        url = str(spec["url"])
        method = str(spec.get("method") or "GET").upper()
        headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HostFunctionError(f"malformed http_request: {exc}") from None
    services = getattr(call, "services", None)
    if services is None:
        raise HostFunctionError(f"HTTP request to {url} refused: no manifest connection allows this host")
    result = services.current.http.request(method, url, headers, call.read(body) if body else None)
    call.state.http_status = result.status
    call.state.http_headers = json.dumps(result.headers).encode()
    return call.write(result.body)


def http_status_code(call: GuestCall) -> int:
    return call.state.http_status


def http_headers(call: GuestCall) -> int:
    return call.write(call.state.http_headers)


FUNCTIONS = [
    HostFunction(ENV_MODULE, "http_request", ("i64", "i64"), ("i64",), http_request, effects=True),
    HostFunction(ENV_MODULE, "http_status_code", (), ("i32",), http_status_code),
    HostFunction(ENV_MODULE, "http_headers", (), ("i64",), http_headers),
]
