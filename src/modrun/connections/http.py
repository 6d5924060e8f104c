"""Outbound HTTP for functions and models, limited to manifest http connections.

A URL is allowed when it equals a connection's ``endpoint`` or starts with its
``baseUrl`` (the longest matching baseUrl wins). The connection's headers
(overriding the caller's of the same name) and query parameters are added.
Error messages name the URL the caller asked for, never the one with
injected parameters, so secrets do not leak into them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import httpx

from modrun.connections.resolve import HttpTarget
from modrun.errors import HostFunctionError, RequestRefused
from modrun.redact import REDACTOR

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes


class HttpConnections:
    def __init__(self, targets: Mapping[str, HttpTarget]) -> None:
        self.targets = dict(targets)
        self._client = httpx.Client(timeout=DEFAULT_TIMEOUT, follow_redirects=False)

    def match(self, url: str) -> HttpTarget | None:
        best: HttpTarget | None = None
        for target in self.targets.values():
            if target.endpoint is not None and url.split("?", 1)[0] == target.endpoint.split("?", 1)[0]:
                return target
            if (
                target.base_url is not None
                and url.startswith(target.base_url)
                and (best is None or len(target.base_url) > len(best.base_url or ""))
            ):
                best = target
        return best

    def prepare(self, url: str, headers: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """The URL and headers to send, or HostFunctionError when not allowed."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise RequestRefused(f"HTTP request to {url} refused: only http and https URLs")
        target = self.match(url)
        if target is None:
            raise RequestRefused(f"HTTP request to {url} refused: no manifest connection allows this host")
        merged = {k: v for k, v in headers.items() if k.lower() not in {h.lower() for h in target.headers}}
        merged.update(target.headers)
        # surrounding whitespace is not part of a header value (RFC 9110 5.5); a
        # missing secret can leave "Bearer " behind
        merged = {k: v.strip() for k, v in merged.items()}
        if target.query:
            url = url + ("&" if "?" in url else "?") + urlencode(target.query)
        return url, merged

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float = DEFAULT_TIMEOUT,
        checked: bool = True,
    ) -> HttpResult:
        """Send a request. ``checked=False`` skips the allow-list, for URLs the
        operator configured outright (``--modelHost``), never for plugins'."""
        send_url, send_headers = self.prepare(url, headers) if checked else (url, dict(headers))
        return self._send(method, url, send_url, send_headers, body, timeout)

    def _send(
        self,
        method: str,
        url: str,
        send_url: str,
        send_headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
    ) -> HttpResult:
        try:
            response = self._client.request(
                method, send_url, headers=send_headers, content=body, timeout=timeout
            )
        except httpx.TimeoutException:
            raise HostFunctionError(f"HTTP request to {url} timed out after {timeout:g}s") from None
        except httpx.HTTPError as exc:
            reason = REDACTOR.scrub(f"{type(exc).__name__}: {exc}")
            raise HostFunctionError(f"HTTP request to {url} failed: {reason}") from None
        return HttpResult(response.status_code, dict(response.headers), response.content)

    def close(self) -> None:
        self._client.close()
