"""``POST /functions/{name}`` answered as a stream, when the caller asks for one.

* ``Accept: text/event-stream``: each chunk of the function's output is an SSE
  event (``data:`` lines, one per line of the chunk); the end is ``event:
  done`` with ``{"durationMs", "chunks", "usage"}``; a failure after the
  first byte is ``event: error`` with the error body a whole call answers.
* ``Accept: application/x-ndjson``: one JSON object a line - ``{"data":
  "..."}`` per chunk, then ``{"event": "done", ...}`` or ``{"event":
  "error", ...}``.

The status is 200 once streaming starts; failures before it (unknown
function, bad input) keep their own status. A client that goes away cancels
the call: the function stops at its next host call and its model requests
are closed.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import time
from typing import TYPE_CHECKING, Any

from modrun.errors import CallFailed
from modrun.http.asgi import SSE, sse_event, until_disconnected

if TYPE_CHECKING:
    from modrun.plugins.invoker import Invoker
    from modrun.plugins.plugin import Function, Plugin


class _Frames:
    """Chunks, the end and failures in one of the two formats."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a chunk may split a character

    def chunk(self, data: bytes) -> bytes:
        text = self._decoder.decode(data)
        if self.kind == SSE:
            return "".join(f"data: {line}\n" for line in text.split("\n")).encode() + b"\n"
        return json.dumps({"data": text}).encode() + b"\n"

    def event(self, name: str, doc: dict[str, Any]) -> bytes:
        if self.kind == SSE:
            return sse_event(name, doc)
        return json.dumps({"event": name, **doc}).encode() + b"\n"


def usage_of(streams: list[Any]) -> dict[str, int] | None:
    """The model streams' usage, added up."""
    total: dict[str, int] = {}
    for stream in streams:
        for key, value in (stream.usage or {}).items():
            if isinstance(value, int):
                total[key] = total.get(key, 0) + value
    return total or None


async def serve_stream(
    invoker: Invoker,
    plugin: Plugin,
    fn: Function,
    data: bytes,
    kind: str,
    receive: Any,
    send: Any,
    error_body: Any,
) -> None:
    started = time.perf_counter()
    call = invoker.stream(plugin, fn, data)
    frames = _Frames(kind)
    headers = [
        (b"content-type", kind.encode() + (b"; charset=utf-8" if kind == SSE else b"")),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),  # proxies in front must not buffer it either
    ]
    watcher = asyncio.ensure_future(until_disconnected(receive))
    watcher.add_done_callback(lambda _t: call.cancel() if not _t.cancelled() else None)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    chunks = 0
    try:
        async for chunk in call.chunks():
            chunks += 1
            await send({"type": "http.response.body", "body": frames.chunk(chunk), "more_body": True})
        done = {
            "durationMs": round((time.perf_counter() - started) * 1000, 3),
            "chunks": chunks,
            "usage": usage_of(call.sink.opened_streams),
        }
        final = frames.event("done", done)
    except CallFailed as exc:
        body = error_body(exc.message, function=fn.name, plugin=fn.plugin, kind=exc.kind, logs=exc.logs)
        final = frames.event("error", json.loads(body))
    finally:
        watcher.cancel()
        if not call.done:
            call.cancel()
    await send({"type": "http.response.body", "body": final, "more_body": False})
