"""Streaming model answers, read by a function chunk by chunk.

An OpenAI-compatible model is asked with ``"stream": true`` and its
server-sent events are parsed here; any other provider answers whole, and
that answer is the stream's one chunk.

The upstream request runs on one background event loop per process (an
``httpx.AsyncClient``), and a function's thread pulls text from it: at most
``READ_AHEAD`` characters are read ahead of the guest, so a slow guest (or a
slow client behind it) holds the upstream back instead of filling memory,
and ``abort()`` from any thread ends a wait at once and closes the upstream
connection. The model's ``timeout`` is the longest wait for any one chunk
(an idle timeout), and the call's own deadline bounds the whole. Each stream
is recorded as one inference when it ends, with the whole text, the chunk
count and the time to the first token.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx

from modrun.errors import CallTimeout, HostFunctionError

if TYPE_CHECKING:
    from modrun.models.providers import Caller, Inference, ModelInvoker


class _Loop:
    """One daemon thread running an event loop for every stream's upstream."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None
    _client: httpx.AsyncClient | None = None

    @classmethod
    def get(cls) -> tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="modrun-streams", daemon=True).start()
                limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)

                async def make() -> httpx.AsyncClient:
                    return httpx.AsyncClient(limits=limits, follow_redirects=False)

                cls._client = asyncio.run_coroutine_threadsafe(make(), loop).result()
                cls._loop = loop
            assert cls._client is not None
            return cls._loop, cls._client


def text_of(answer: Any) -> str:
    """The text of a whole model answer: a chat completion's content, a
    completion's text, else the answer as JSON."""
    if isinstance(answer, dict):
        choices = answer.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            first = choices[0]
            message = first.get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                return message["content"]
            if isinstance(first.get("text"), str):
                return first["text"]
    return answer if isinstance(answer, str) else json.dumps(answer)


DRAIN = 1.0
"""Seconds the rest of a stream after ``[DONE]`` may take to arrive: read to
its end, its connection is kept for the next stream (closing it half-read
would cost a new connection, about a millisecond, every time)."""

END = None  # what _sse_texts yields at [DONE], before reading the stream to its end


async def _sse_texts(response: httpx.Response, usage: dict[str, Any]) -> AsyncIterator[str | None]:
    """Token texts of an OpenAI stream (``data: {...}`` events), then ``END`` at
    ``[DONE]`` while the rest is read; the usage of its last event, when the
    server sends one, into ``usage``."""
    done = False
    async for line in response.aiter_lines():
        if done or not line.startswith("data:"):
            continue  # comments, ids, event names, blank separators; what follows [DONE]
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            yield END
            continue
        try:
            event = json.loads(data)
        except ValueError:
            raise HostFunctionError(
                f"the model's stream sent an event that is not JSON: {data[:200]}"
            ) from None
        if not isinstance(event, dict):
            continue
        if event.get("error"):
            error = event["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise HostFunctionError(f"the model failed mid-stream: {message}")
        if isinstance(event.get("usage"), dict):
            usage.update(event["usage"])
        for choice in event.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            content = delta.get("content") if isinstance(delta, dict) else None
            if content:
                yield content


async def _drain(texts: AsyncIterator[str | None]) -> None:
    async for _text in texts:
        pass


READ_AHEAD = 64 * 1024
"""Characters of a model's answer read ahead of the function, at most: a
function that reads slowly holds the model back beyond this."""


class ModelStream:
    """One model answer as a sequence of text chunks; ``next()`` blocks the
    calling (function) thread until there is text, None at the end.

    A pump on the streams' loop reads the upstream into a buffer of at most
    ``READ_AHEAD`` characters; ``next()`` takes everything buffered as one
    chunk. When the function keeps up, each chunk is one token as it came;
    when it falls behind, the tokens that arrived meanwhile come together, so
    a slow function costs one host call per wait, not per token."""

    def __init__(
        self,
        name: str,
        record: Callable[[Inference], None] | None,
        make_inference: Callable[..., Inference],
        idle: float,
        deadline: float | None,
    ) -> None:
        self.name = name
        self.usage: dict[str, Any] = {}
        self.chunks = 0
        self.first_token_ms: float | None = None
        self._parts: list[str] = []
        self._record = record
        self._make_inference = make_inference
        self._idle = idle
        self._deadline = deadline
        self._started = time.perf_counter()
        self._response: httpx.Response | None = None
        self._pump: asyncio.Task | None = None
        self._ready = threading.Condition()
        self._buffer: list[str] = []
        self._buffered = 0
        self._room: asyncio.Event | None = None  # set on the streams' loop when the buffer has room
        self._upstream_done = False
        self._failure: BaseException | None = None
        self._aborted: str | None = None
        self._ended = False
        self._closing: asyncio.Future | None = None

    # -- on the function's thread ------------------------------------------

    def next(self) -> str | None:
        if self._ended:
            return None
        with self._ready:
            while not self._buffer and not self._upstream_done and not self._aborted:
                wait = self._idle
                if self._deadline is not None:
                    wait = min(wait, self._deadline - time.monotonic())
                if wait <= 0 or not self._ready.wait(wait):
                    self._fail_waiting(wait)
            if self._aborted:
                self._finish(self._aborted)
                raise HostFunctionError(f"model {self.name!r}: {self._aborted}")
            text = "".join(self._buffer)
            full = self._buffered >= READ_AHEAD
            self._buffer, self._buffered = [], 0
            failure = self._failure if not text else None
        if full and self._room is not None:
            _Loop.get()[0].call_soon_threadsafe(self._room.set)
        if failure is not None:
            self._finish(str(failure))
            raise failure
        if not text:
            self._finish(None)
            return None
        if self.first_token_ms is None:
            self.first_token_ms = (time.perf_counter() - self._started) * 1000
        self.chunks += 1
        self._parts.append(text)
        return text

    def _fail_waiting(self, waited: float) -> None:
        if self._deadline is not None and time.monotonic() >= self._deadline - 0.001:
            # the call's own limit: it fails as a timeout, not as the guest's to handle
            error: BaseException = CallTimeout(
                f"the call's time ran out while model {self.name!r} was streaming"
            )
        else:
            error = HostFunctionError(f"model {self.name!r}: no chunk for {waited:g}s (idle timeout)")
        self._finish(str(error))
        raise error

    def close(self) -> None:
        """The guest is done with it (or the call ended): close the upstream."""
        if not self._ended:
            self._finish(self._aborted or ("closed before the end" if self.chunks else None))

    # -- from any thread ---------------------------------------------------

    def abort(self, reason: str) -> None:
        """Stop a wait in progress and the upstream request (a client went
        away, the call timed out)."""
        with self._ready:
            self._aborted = reason
            self._ready.notify_all()
        _Loop.get()[0].call_soon_threadsafe(self._stop_pump)

    # -- on the streams' loop ----------------------------------------------

    def _stop_pump(self) -> None:
        if self._pump is not None and not self._pump.done() and not self._upstream_done:
            self._pump.cancel()
        elif self._response is not None:
            self._closing = asyncio.ensure_future(self._aclose())

    async def _run_pump(self, texts: AsyncIterator[str | None]) -> None:
        self._room = asyncio.Event()
        try:
            async for text in texts:
                if text is END:
                    self._done()  # the function goes on now; the rest is read below
                    await asyncio.wait_for(_drain(texts), DRAIN)
                    break
                with self._ready:
                    self._buffer.append(text)
                    self._buffered += len(text)
                    full = self._buffered >= READ_AHEAD
                    self._ready.notify()
                if full:
                    self._room.clear()
                    with self._ready:
                        full = self._buffered >= READ_AHEAD  # taken meanwhile?
                    if full:
                        await self._room.wait()
        except (HostFunctionError, CallTimeout) as exc:
            self._failure = exc
        except TimeoutError:
            pass  # the rest after [DONE] did not come: the connection is closed instead
        except httpx.TimeoutException:
            self._failure = HostFunctionError(
                f"model {self.name!r}: no chunk for {self._idle:g}s (idle timeout)"
            )
        except httpx.HTTPError as exc:
            self._failure = HostFunctionError(f"model {self.name!r}: the stream broke: {type(exc).__name__}")
        finally:
            try:
                await self._aclose()  # read to its end: the connection goes back to the pool
            finally:
                self._done()

    def _done(self) -> None:
        with self._ready:
            self._upstream_done = True
            self._ready.notify_all()

    async def _aclose(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            await response.aclose()

    def _finish(self, error: str | None) -> None:
        if self._ended:
            return
        self._ended = True
        _Loop.get()[0].call_soon_threadsafe(self._stop_pump)
        if self._record is None:
            return
        whole = "".join(self._parts)
        output = {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": whole}}],
            "usage": self.usage or None,
            "stream": {"chunks": self.chunks, "timeToFirstTokenMs": self.first_token_ms},
        }
        self._record(self._make_inference(output, error, (time.perf_counter() - self._started) * 1000))

    # -- opening -----------------------------------------------------------

    def start_whole(self, answer: Any) -> None:
        """A provider that does not stream: its whole answer is one chunk."""
        with self._ready:
            self._buffer = [text_of(answer)]
            self._upstream_done = True

    def start_sse(self, url: str, headers: dict[str, str], body: bytes, connect_timeout: float) -> None:
        """Open an OpenAI-compatible stream and start reading it; errors before
        the first event (an HTTP error status, an unreachable server) are
        raised here."""
        loop, client = _Loop.get()

        async def opening() -> None:
            timeout = httpx.Timeout(connect_timeout, read=self._idle)
            request = client.build_request("POST", url, headers=headers, content=body, timeout=timeout)
            try:
                response = await client.send(request, stream=True)
            except httpx.TimeoutException:
                raise HostFunctionError(
                    f"model {self.name!r}: no answer within {connect_timeout:g}s"
                ) from None
            except httpx.HTTPError as exc:
                raise HostFunctionError(f"model {self.name!r}: {type(exc).__name__} reaching {url}") from None
            if response.status_code >= 400:
                excerpt = (await response.aread())[:300].decode("utf-8", "replace")
                await response.aclose()
                raise HostFunctionError(f"model {self.name!r} failed: HTTP {response.status_code}: {excerpt}")
            self._response = response
            self._pump = asyncio.ensure_future(self._run_pump(_sse_texts(response, self.usage)))

        try:
            asyncio.run_coroutine_threadsafe(opening(), loop).result()
        except HostFunctionError as exc:
            self._finish(str(exc))
            raise


def open_stream(
    invoker: ModelInvoker,
    name: str,
    payload: Any,
    caller: Caller | None,
    deadline: float | None = None,
) -> ModelStream:
    """Start a model's answer as a stream (see the module's docstring). The
    model's ``timeout`` bounds the wait for each chunk; ``deadline``
    (``time.monotonic()``) the whole stream."""
    spec = invoker.spec(name)
    idle = spec.timeout
    if spec.provider == "openai" and isinstance(payload, dict) and spec.source_model:
        payload = {"model": spec.source_model, **payload}
    started = time.time()

    def make_inference(output: Any, error: str | None, duration_ms: float) -> Inference:
        return invoker.inference(name, spec, payload, output, started, duration_ms, error, 1, caller)

    stream = ModelStream(name, invoker.on_inference, make_inference, idle, deadline)
    if spec.provider != "openai" or not isinstance(payload, dict):
        try:
            answer = invoker.invoke(name, payload, caller, record=False)
        except HostFunctionError as exc:
            stream._finish(str(exc))
            raise
        stream.start_whole(answer)
        return stream
    body = json.dumps({**payload, "stream": True, "stream_options": {"include_usage": True}}).encode()
    url = invoker.url(name, spec)
    send_url, headers = invoker.http.prepare(
        url, {"Content-Type": "application/json", "Accept": "text/event-stream"}
    )
    stream.start_sse(send_url, headers, body, spec.timeout)
    return stream
