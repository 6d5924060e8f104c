"""A follower's writes go to the leader.

Reads, the gateway and the console are served where they arrive; a request
that changes something (any method but GET, HEAD, OPTIONS) is sent on to the
orchestrator holding the lease, as it came (the caller's credentials too: the
leader authorises it, exactly as if it had been sent there), and its answer
comes back as it was. During a takeover it waits for the new leader up to
``WAIT`` seconds, then answers 503 with ``Retry-After``. Only a leader that
could not be reached at all is tried again: one that took the request and
did not answer may have carried it out (502).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from modrun.http.asgi import JSON, BodyTooLarge, read_body, respond
from modrun.http.bases import UNREACHED

if TYPE_CHECKING:
    from modrun.orchestrator.leadership import Campaign

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WAIT = 5.0
MAX_BODY = 1 << 30  # artifacts can be large; the leader applies its own limits
FORWARDED_BY = b"x-modrun-forwarded-by"
_HOP = frozenset(
    {
        b"host",
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)

_NOT_PASSED_ON = _HOP | {b"content-encoding"}  # httpx has decoded the body already

Handler = Callable[[dict, Any, Any], Awaitable[None]]


class LeaderForward:
    def __init__(self, campaign: Campaign, leading: Callable[[], bool], timeout: float = 120.0) -> None:
        self.campaign = campaign
        self.leading = leading
        self.client = httpx.AsyncClient(timeout=timeout)

    async def close(self) -> None:
        await self.client.aclose()

    async def __call__(self, scope: dict, receive: Any, send: Any, local: Handler) -> None:
        """Send the request to the leader, or to ``local`` once this one leads."""
        try:
            body = await read_body(receive, MAX_BODY)
        except BodyTooLarge:
            await respond(send, 413, b'{"error": "request body too large"}', JSON)
            return
        if any(k == FORWARDED_BY for k, _v in scope["headers"]):
            await self._unavailable(send, "forwarded to an orchestrator that does not lead")
            return
        deadline = time.monotonic() + WAIT
        while True:
            if self.leading():
                await local(scope, _replay(body), send)
                return
            leader = self.campaign.leader
            if leader is not None and leader.live and leader.holder != self.campaign.lease.instance:
                try:
                    answer = await self._send(scope, body, leader.url)
                except UNREACHED:
                    pass  # the old leader, gone (nothing was sent): wait for the lease to pass on
                except httpx.TransportError as exc:  # sent, perhaps carried out: never sent twice
                    message = {
                        "error": f"the leader did not answer ({type(exc).__name__}); it may have been done"
                    }
                    await respond(send, 502, json.dumps(message).encode(), JSON)
                    return
                else:
                    await _pass_on(send, answer)
                    return
            if time.monotonic() > deadline:
                await self._unavailable(send, "no orchestrator leads the fleet at the moment")
                return
            await asyncio.sleep(0.05)

    async def _send(self, scope: dict, body: bytes, base: str) -> httpx.Response:
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        url = base + path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k not in _HOP]
        client = scope.get("client")
        headers.append((FORWARDED_BY, self.campaign.lease.instance.encode()))
        if client:
            headers.append((b"x-forwarded-for", client[0].encode()))
        return await self.client.request(scope["method"], url, headers=headers, content=body)

    @staticmethod
    async def _unavailable(send: Any, why: str) -> None:
        await respond(send, 503, json.dumps({"error": why}).encode(), JSON, [(b"retry-after", b"1")])


async def _pass_on(send: Any, answer: httpx.Response) -> None:
    headers = [(k, v) for k, v in answer.headers.raw if k.lower() not in _NOT_PASSED_ON]
    headers.append((b"content-length", str(len(answer.content)).encode()))
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": answer.content})


def _replay(body: bytes) -> Callable[[], Awaitable[dict]]:
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # nothing more: the client stays until answered
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
