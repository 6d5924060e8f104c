"""A streaming call seen from the event loop: the chunks a function emits on
its thread, read one by one as they come.

The function's thread hands each chunk over with ``call_soon_threadsafe`` and
then holds one of ``WINDOW`` permits until the reader has taken a chunk, so a
reader that falls behind stops the function (and, through it, the model it
reads from) instead of letting chunks pile up in memory. ``cancel()`` - the
client went away - wakes a waiting thread, aborts the model streams the call
opened, and makes the function's next host call stop it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future
from typing import Any

from modrun.errors import CallTimeout, ClientGone

WINDOW = 8
"""Chunks a function may emit ahead of its reader."""

_END = object()


class QueueSink:
    """The function-thread side (``wasm.host.OutputSink``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.permits = threading.Semaphore(WINDOW)
        self.gone = False
        self._streams: list[Any] = []
        self.opened_streams: list[Any] = []  # every model stream the call opened (their usage)
        self._lock = threading.Lock()

    def emit(self, data: bytes, deadline: float | None = None) -> None:
        if self.gone:
            raise ClientGone("the caller went away")
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not self.permits.acquire(timeout=wait):
            raise CallTimeout("the call's time ran out while its reader was behind")
        if self.gone:
            raise ClientGone("the caller went away")
        self.loop.call_soon_threadsafe(self.queue.put_nowait, data)

    def opened(self, stream: Any) -> None:
        with self._lock:
            gone = self.gone
            self.opened_streams.append(stream)
            if not gone:
                self._streams.append(stream)
        if gone:
            stream.abort("the caller went away")

    def cancel(self) -> None:
        with self._lock:
            self.gone = True
            streams, self._streams = self._streams, []
        self.permits.release()  # a thread waiting for a permit wakes and sees gone
        for stream in streams:
            stream.abort("the caller went away")


class StreamingCall:
    """Made by ``Invoker.stream``; iterate ``chunks()``, then read ``result``
    (the ``CallResult``), or get the call's ``CallFailed`` from ``chunks()``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.sink = QueueSink(loop)
        self.result: Any = None
        self._future: Future | None = None

    def watch(self, future: Future) -> None:
        self._future = future
        loop, queue = self.sink.loop, self.sink.queue
        future.add_done_callback(lambda _f: loop.call_soon_threadsafe(queue.put_nowait, _END))

    async def chunks(self) -> AsyncIterator[bytes]:
        """Each chunk as it comes, then the output the function set (if any)."""
        queue, permits = self.sink.queue, self.sink.permits
        while True:
            item = await queue.get()
            if item is _END:
                break
            permits.release()
            yield item
        assert self._future is not None
        self.result = self._future.result()  # raises the call's failure
        if self.result.output:
            yield self.result.output

    def cancel(self) -> None:
        """The reader is gone: stop the function at its next host call."""
        self.sink.cancel()

    @property
    def done(self) -> bool:
        return self._future is not None and self._future.done()
