"""Streaming model answers, read by a function chunk by chunk.

An OpenAI-compatible model is asked with ``"stream": true`` and its
server-sent events are parsed here; any other provider answers whole, and
that answer is the stream's one chunk.

The upstream request runs on one background event loop per process (an
``httpx.AsyncClient``), and a function's thread pulls each chunk from it:
nothing is read ahead of what the guest asks for, so a slow guest (or a slow
client behind it) holds the upstream back instead of filling memory, and
``abort()`` from any thread cancels the read at once and closes the upstream
connection. The model's ``timeout`` is the longest wait for any one chunk
(an idle timeout), and the call's own deadline bounds the whole. Each stream
is recorded as one inference when it ends, with the whole text, the chunk
count and the time to the first token.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
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


async def _sse_texts(response: httpx.Response, usage: dict[str, Any]) -> AsyncIterator[str]:
    """Token texts of an OpenAI stream (``data: {...}`` events up to ``[DONE]``);
    the usage of its last event, when the server sends one, into ``usage``."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # comments, ids, event names, blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            return
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


class ModelStream:
    """One model answer as a sequence of text chunks; ``next()`` blocks the
    calling (function) thread until the next chunk, None at the end."""

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
        self._texts: AsyncIterator[str] | None = None
        self._response: httpx.Response | None = None
        self._future: Any = None
        self._aborted: str | None = None
        self._ended = False
        self._error: str | None = None

    # -- on the function's thread ------------------------------------------

    def next(self) -> str | None:
        if self._ended:
            return None
        if self._aborted:
            raise HostFunctionError(self._aborted)
        timeout = self._idle
        if self._deadline is not None:
            timeout = min(timeout, max(0.0, self._deadline - time.monotonic()))
        loop, _client = _Loop.get()
        self._future = asyncio.run_coroutine_threadsafe(self._next(timeout), loop)
        try:
            text = self._future.result()
        except (HostFunctionError, CallTimeout) as exc:
            self._finish(str(exc))
            raise
        except (concurrent.futures.CancelledError, asyncio.CancelledError, TimeoutError) as exc:
            reason = self._aborted or f"{type(exc).__name__}"
            self._finish(reason)
            raise HostFunctionError(f"model {self.name!r}: {reason}") from None
        finally:
            self._future = None
        if text is None:
            self._finish(None)
            return None
        if self.first_token_ms is None:
            self.first_token_ms = (time.perf_counter() - self._started) * 1000
        self.chunks += 1
        self._parts.append(text)
        return text

    def close(self) -> None:
        """The guest is done with it (or the call ended): close the upstream."""
        if not self._ended:
            self._finish(self._aborted or ("closed before the end" if self.chunks else None))

    # -- from any thread ---------------------------------------------------

    def abort(self, reason: str) -> None:
        """Stop a read in progress and the upstream request (a client went
        away, the call timed out)."""
        self._aborted = reason
        future = self._future
        if future is not None:
            future.cancel()
        loop, _client = _Loop.get()
        asyncio.run_coroutine_threadsafe(self._aclose(), loop)

    # -- on the streams' loop ----------------------------------------------

    async def _next(self, timeout: float) -> str | None:
        assert self._texts is not None
        try:
            return await asyncio.wait_for(anext(self._texts, None), timeout)
        except TimeoutError:
            if self._deadline is not None and time.monotonic() >= self._deadline - 0.001:
                # the call's own limit: it fails as a timeout, not as the guest's to handle
                raise CallTimeout(
                    f"the call's time ran out while model {self.name!r} was streaming"
                ) from None
            raise HostFunctionError(
                f"model {self.name!r}: no chunk for {timeout:g}s (idle timeout)"
            ) from None
        except httpx.HTTPError as exc:
            raise HostFunctionError(f"model {self.name!r}: the stream broke: {type(exc).__name__}") from None

    async def _aclose(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            await response.aclose()

    def _finish(self, error: str | None) -> None:
        self._ended = True
        self._error = error
        loop, _client = _Loop.get()
        asyncio.run_coroutine_threadsafe(self._aclose(), loop)
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

        async def one() -> AsyncIterator[str]:
            yield text_of(answer)

        self._texts = one()

    def start_sse(self, url: str, headers: dict[str, str], body: bytes, connect_timeout: float) -> None:
        """Open an OpenAI-compatible stream; errors before the first event (an
        HTTP error status, an unreachable server) are raised here."""
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
            self._texts = _sse_texts(response, self.usage)

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
