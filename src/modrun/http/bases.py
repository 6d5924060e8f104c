"""Several base URLs of one service (the orchestrators of a fleet, given as
``http://a:8000,http://b:8000``): a request goes to the one that answered
last and, when it cannot be reached at all, to the next one.

Only connection failures move on (nothing was sent, so nothing can happen
twice); an answer, whatever its status, is the answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

T = TypeVar("T")

UNREACHED = (httpx.ConnectError, httpx.ConnectTimeout)


class Bases:
    def __init__(self, urls: str) -> None:
        self.urls = [u.strip().rstrip("/") for u in urls.split(",") if u.strip()]
        if not self.urls:
            raise ValueError("no URL given")
        self._at = 0

    def __str__(self) -> str:
        return ",".join(self.urls)

    @property
    def current(self) -> str:
        return self.urls[self._at]

    def _order(self) -> list[int]:
        n = len(self.urls)
        return [(self._at + i) % n for i in range(n)]

    def request(self, send: Callable[[str], T]) -> T:
        """``send(base)`` on the current base, then each other one it could not reach."""
        error: Exception | None = None
        for at in self._order():
            try:
                result = send(self.urls[at])
            except UNREACHED as exc:
                error = exc
                continue
            self._at = at
            return result
        assert error is not None
        raise error

    async def arequest(self, send: Callable[[str], Awaitable[T]]) -> T:
        error: Exception | None = None
        for at in self._order():
            try:
                result = await send(self.urls[at])
            except UNREACHED as exc:
                error = exc
                continue
            self._at = at
            return result
        assert error is not None
        raise error
