"""Extism's outbound HTTP (``http_request``, ``http_status_code``, ``http_headers``).

Every request is checked against an allow-list of URL prefixes. The runtime core
allows none; the manifest's http connections (see docs/host-functions.md) add
entries. A refused request fails the call with a clear error naming the URL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from modrun.errors import HostFunctionError
from modrun.hostfns.base import GuestCall, HostFunction
from modrun.wasm.kernel import ENV_MODULE


class HttpPolicy:
    """Which URLs plugins may reach. Empty by default: everything is refused."""

    def __init__(self, allowed_prefixes: Sequence[str] = ()) -> None:
        self.allowed_prefixes = tuple(allowed_prefixes)

    def check(self, url: str) -> None:
        if not any(url.startswith(p) for p in self.allowed_prefixes):
            raise HostFunctionError(f"HTTP request to {url} refused: no manifest connection allows this host")


DENY_ALL = HttpPolicy()


def http_request(call: GuestCall, request: int, body: int) -> int:
    try:
        spec = json.loads(call.read(request))
        url = str(spec["url"])
    except (ValueError, KeyError, TypeError) as exc:
        raise HostFunctionError(f"malformed http_request: {exc}") from exc
    policy: HttpPolicy = getattr(call, "http_policy", DENY_ALL)
    policy.check(url)
    raise HostFunctionError(f"HTTP request to {url} refused: outbound HTTP is not configured")


def http_status_code(call: GuestCall) -> int:
    return call.state.http_status


def http_headers(call: GuestCall) -> int:
    return call.write(call.state.http_headers)


FUNCTIONS = [
    HostFunction(ENV_MODULE, "http_request", ("i64", "i64"), ("i64",), http_request, effects=True),
    HostFunction(ENV_MODULE, "http_status_code", (), ("i32",), http_status_code),
    HostFunction(ENV_MODULE, "http_headers", (), ("i64",), http_headers),
]
