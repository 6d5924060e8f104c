"""A streaming call seen by its reader: the chunks a function emits on its
thread, read one by one as they come, from the event loop (``StreamingCall``)
or from another thread (``iterate``).

The function's thread hands each chunk over (``call_soon_threadsafe`` to an
event loop) and holds one of ``WINDOW`` permits until the reader has taken a
chunk, so a
reader that falls behind stops the function (and, through it, the model it
reads from) instead of letting chunks pile up in memory. ``cancel()`` - the
client went away - wakes a waiting thread, aborts the model streams the call
opened, and makes the function's next host call stop it.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any

from modrun.errors import CallTimeout, ClientGone

WINDOW = 8
"""Chunks a function may emit ahead of its reader."""

_END = object()


class ChunkSink:
    """The function-thread side (``wasm.host.OutputSink``): ``deliver`` hands a
    chunk to the reader's queue."""

    def __init__(self, deliver: Callable[[Any], object]) -> None:
        self.deliver = deliver
        self.permits = threading.Semaphore(WINDOW)
        self.gone = False
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
        self.deliver(data)

    def opened(self, stream: Any) -> None:
        with self._lock:
            gone = self.gone
            self.opened_streams.append(stream)
        if gone:
            stream.abort("the caller went away")

    def cancel(self) -> None:
        with self._lock:
            self.gone = True
            streams = list(self.opened_streams)
        self.permits.release()  # a thread waiting for a permit wakes and sees gone
        for stream in streams:  # those already ended ignore it
            stream.abort("the caller went away")


class StreamingCall:
    """Made by ``Invoker.stream``; iterate ``chunks()``, then read ``result``
    (the ``CallResult``), or get the call's ``CallFailed`` from ``chunks()``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.sink = ChunkSink(lambda item: loop.call_soon_threadsafe(self.queue.put_nowait, item))
        self.result: Any = None
        self._future: Future | None = None

    def watch(self, future: Future) -> None:
        self._future = future
        future.add_done_callback(lambda _f: self.sink.deliver(_END))

    async def chunks(self) -> AsyncIterator[bytes]:
        """Each chunk as it comes, then the output the function set (if any)."""
        queue, permits = self.queue, self.sink.permits
        ended = False
        while not ended:
            item = await queue.get()
            if item is _END:
                break
            permits.release()
            # what came while the reader was busy goes on together (one write, not one each)
            while not queue.empty():
                more = queue.get_nowait()
                if more is _END:
                    ended = True
                    break
                permits.release()
                item += more
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


def iterate(executor: Executor, run: Callable[[ChunkSink], Any]) -> Iterator[bytes]:
    """The chunks of ``run(sink)`` (on ``executor``) for a reader on a plain
    thread, then the output it set; leaving the loop early stops the call."""
    pending: queue.SimpleQueue[Any] = queue.SimpleQueue()
    sink = ChunkSink(pending.put)
    future = executor.submit(run, sink)
    future.add_done_callback(lambda _f: pending.put(_END))
    finished = False
    try:
        while (item := pending.get()) is not _END:
            sink.permits.release()
            yield item
        finished = True
    finally:
        if not finished:
            sink.cancel()
    result = future.result()
    if result.output:
        yield result.output
