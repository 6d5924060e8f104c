"""Streaming host functions: a function reads a model's answer chunk by chunk
and emits its own output as it goes.

* ``model_stream_open({"model", "input"})`` -> ``{"stream": n}``: starts the
  model's answer (OpenAI-compatible providers stream; others answer whole, as
  one chunk).
* ``model_stream_next({"stream": n})`` -> ``{"text": "..."}`` for the next
  chunk, ``{"done": true, "usage": {...}}`` at the end; it waits for the chunk,
  so the guest sets the pace.
* ``model_stream_close({"stream": n})`` -> ``null``: done with it early (the
  upstream request is closed). Streams still open when the call ends are
  closed then.
* ``output_chunk(block)``: the block's bytes are the next piece of the call's
  output, sent to a streaming caller at once (waiting while the caller is
  behind); to any other caller the output is every chunk, then what
  ``output_set`` gave, joined.

When a streaming caller goes away, the next of these calls stops the guest.
"""

from __future__ import annotations

import time
from typing import Any

from modrun.errors import CallTimeout, ClientGone, HostFunctionError
from modrun.hostfns.envelope import require, user_function
from modrun.models.providers import Caller
from modrun.models.streaming import ModelStream, open_stream
from modrun.wasm.host import GuestCall, HostFunction
from modrun.wasm.kernel import USER_MODULE

MAX_OPEN = 16
"""Model streams one call may hold open at once."""


def _gone(call: GuestCall) -> None:
    sink = call.state.sink
    if sink is not None and sink.gone:
        raise ClientGone("the caller went away")


def _open(services: Any, request: dict[str, Any], call: GuestCall) -> dict[str, int]:
    _gone(call)
    state = call.state
    if state.model_streams is None:
        state.model_streams = {}
    if len(state.model_streams) >= MAX_OPEN:
        raise HostFunctionError(f"a call may hold at most {MAX_OPEN} model streams open")
    caller = Caller(call.plugin_name, state.function, getattr(call, "build_id", ""))
    stream = open_stream(
        services.models, require(request, "model"), request.get("input"), caller, state.deadline
    )
    handle = max(state.model_streams, default=0) + 1
    state.model_streams[handle] = stream
    if state.sink is not None:
        state.sink.opened(stream)
    return {"stream": handle}


def _stream(request: dict[str, Any], call: GuestCall) -> tuple[int, ModelStream]:
    handle = require(request, "stream", int)
    stream = (call.state.model_streams or {}).get(handle)
    if stream is None:
        raise HostFunctionError(f"no open model stream {handle}")
    return handle, stream


def _next(_services: Any, request: dict[str, Any], call: GuestCall) -> dict[str, Any]:
    _gone(call)
    _handle, stream = _stream(request, call)
    try:
        text = stream.next()
    except HostFunctionError:
        _gone(call)  # aborted because the caller left: stop the guest
        raise
    if text is None:
        return {"done": True, "usage": stream.usage or None}
    return {"text": text}


def _close(_services: Any, request: dict[str, Any], call: GuestCall) -> None:
    handle, stream = _stream(request, call)
    stream.close()
    del call.state.model_streams[handle]  # type: ignore[union-attr]  # _stream found it there


def _output_chunk(call: GuestCall, handle: int) -> None:
    _gone(call)
    state = call.state
    if state.deadline is not None and time.monotonic() > state.deadline:
        raise CallTimeout("the call's time ran out")
    state.emit(call.read(handle))


FUNCTIONS = [
    user_function("model_stream_open", _open),
    user_function("model_stream_next", _next),
    user_function("model_stream_close", _close),
    HostFunction(USER_MODULE, "output_chunk", ("i64",), (), _output_chunk, effects=True),
]
