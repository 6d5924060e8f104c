"""OpenAI-compatible serving: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Every model server users pick speaks this wire format, so any OpenAI client
(the official ``openai`` package, LangChain, curl) can use a node or the
gateway unchanged. A request's ``model`` names one of:

* a function marked ``"chat": true`` in its schema: its input is the request
  body, its output the assistant's answer (each chunk it emits is one
  ``chat.completion.chunk`` when the client asks ``"stream": true``);
* a manifest model of an ``openai`` provider: the request goes to it through
  the node's providers, allow-listed connections and inference history, as
  a function's ``model_invoke`` would (streamed with ``stream``).

A function wins over a model of the same name, even one that is no chat
handler (then the answer is 404): a fleet node's guard decides on the
function a name resolves to, so a name must never fall through to the
operator's model behind it. Errors use OpenAI's shape
(``{"error": {"message", "type", "param", "code"}}``); streaming answers end
with ``data: [DONE]`` and carry usage when ``stream_options.include_usage``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from modrun.api.admission import Shed
from modrun.api.streams import usage_of
from modrun.errors import CallFailed, HostFunctionError
from modrun.http.asgi import JSON, BodyTooLarge, client_address, read_body, respond, until_disconnected
from modrun.models.streaming import open_stream
from modrun.redact import REDACTOR

if TYPE_CHECKING:
    from modrun.api.admission import Admission
    from modrun.api.parts import NodeParts
    from modrun.plugins.plugin import Function, Plugin

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"


def openai_error(message: str, kind: str = "invalid_request_error", code: str | None = None) -> bytes:
    doc = {"error": {"message": REDACTOR.scrub(message), "type": kind, "param": None, "code": code}}
    return json.dumps(doc).encode()


def chat_functions(parts: NodeParts) -> dict[str, tuple[Plugin, Function]]:
    catalog = parts.functions.catalog
    found: dict[str, tuple[Plugin, Function]] = {}
    for fn in catalog.by_key.values():
        if fn.signature.chat:
            found.setdefault(fn.name, (catalog.plugins[fn.plugin], fn))
    return found


def chat_models(parts: NodeParts) -> list[str]:
    return sorted(name for name, spec in parts.models.catalog.models.items() if spec.provider == "openai")


def model_entries(names: Iterable[str]) -> dict[str, Any]:
    """``GET /v1/models``'s answer for these model ids."""
    entries = [{"id": n, "object": "model", "created": 0, "owned_by": "modrun"} for n in sorted(names)]
    return {"object": "list", "data": entries}


def model_list(parts: NodeParts) -> dict[str, Any]:
    functions = parts.functions.catalog.by_name
    models = {m for m in chat_models(parts) if m not in functions}  # a function's name shadows a model
    return model_entries(set(chat_functions(parts)) | models)


def _completion(ident: str, model: str, text: str, usage: dict | None) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }


def _chunk(ident: str, model: str, delta: dict, finish: str | None = None, **extra: Any) -> bytes:
    doc = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if delta or finish
        else [],
        **extra,
    }
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


class ChatCompletions:
    """The raw ASGI endpoint for ``POST /v1/chat/completions``; it admits the
    call itself, once the body says whether it streams."""

    def __init__(self, parts: NodeParts) -> None:
        self.parts = parts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            body = await read_body(receive, self.parts.functions.max_input)
        except BodyTooLarge:
            await respond(send, 413, openai_error("the request body is too large"), JSON)
            return
        try:
            request = json.loads(body)
        except ValueError:
            await respond(send, 400, openai_error("the body is not JSON"), JSON)
            return
        if not isinstance(request, dict) or not isinstance(request.get("model"), str):
            await respond(send, 400, openai_error("you must provide a model parameter"), JSON)
            return
        if not isinstance(request.get("messages"), list) or not request["messages"]:
            await respond(send, 400, openai_error("'messages' is a required property"), JSON)
            return
        model, stream = request["model"], bool(request.get("stream"))
        handler = chat_functions(self.parts).get(model)
        # a function of that name that is no chat handler shadows any model of it:
        # the checks in front (a fleet's guard) decided on the function
        shadowed = handler is None and model in self.parts.functions.catalog.by_name
        if handler is None and (shadowed or model not in chat_models(self.parts)):
            message = f"The model `{model}` does not exist or you do not have access to it."
            await respond(send, 404, openai_error(message, code="model_not_found"), JSON)
            return
        admission = self.parts.stream_admission if stream else self.parts.admission
        if not await _admitted(admission, scope, send):
            return
        try:
            if handler is not None:
                await self._function(handler, request, body, stream, receive, send)
            else:
                await self._model(model, request, stream, receive, send)
        finally:
            admission.leave()

    async def _function(
        self,
        handler: tuple[Plugin, Function],
        request: dict,
        body: bytes,
        stream: bool,
        receive: Any,
        send: Any,
    ) -> None:
        plugin, fn = handler
        ident = "chatcmpl-" + uuid.uuid4().hex[:24]
        invoker = self.parts.functions.invoker
        if not stream:
            try:
                result = await invoker.acall(plugin, fn, body)
            except CallFailed as exc:
                await respond(send, exc.http_status, openai_error(exc.message, "server_error"), JSON)
                return
            answer = _completion(ident, fn.name, result.output.decode("utf-8", "replace"), None)
            await respond(send, 200, json.dumps(answer).encode(), JSON)
            return
        call = invoker.stream(plugin, fn, body)

        async def texts() -> AsyncIterator[str]:
            async for chunk in call.chunks():
                yield chunk.decode("utf-8", "replace")

        usage = lambda: usage_of(call.sink.opened_streams)  # noqa: E731
        await _stream_out(ident, fn.name, request, texts(), call.cancel, usage, receive, send)

    async def _model(self, model: str, request: dict, stream: bool, receive: Any, send: Any) -> None:
        invoker = self.parts.models.invoker()
        # the manifest says which upstream model it is (sourceModel): the name asked for stays here
        payload = {k: v for k, v in request.items() if k not in ("model", "stream", "stream_options")}
        if not stream:
            try:
                answer = await asyncio.to_thread(invoker.invoke, model, payload)
            except HostFunctionError as exc:
                await respond(send, 502, openai_error(exc.message, "server_error"), JSON)
                return
            await respond(send, 200, json.dumps(answer).encode(), JSON)
            return
        try:
            opened = await asyncio.to_thread(open_stream, invoker, model, payload, None)
        except HostFunctionError as exc:
            await respond(send, 502, openai_error(exc.message, "server_error"), JSON)
            return

        async def texts() -> AsyncIterator[str]:
            while (text := await asyncio.to_thread(opened.next)) is not None:
                yield text

        ident = "chatcmpl-" + uuid.uuid4().hex[:24]
        usage = lambda: opened.usage or None  # noqa: E731
        await _stream_out(
            ident,
            model,
            request,
            texts(),
            lambda: opened.abort("the caller went away"),
            usage,
            receive,
            send,
            opened.close,
        )


async def _admitted(admission: Admission, scope: dict, send: Any) -> bool:
    try:
        await admission.enter(client_address(scope))
    except Shed as exc:
        message = openai_error(f"the node is at capacity ({exc.reason}); retry shortly", "server_error")
        await respond(send, 503, message, JSON, [(b"retry-after", b"1")])
        return False
    return True


async def _stream_out(
    ident: str,
    model: str,
    request: dict,
    texts: AsyncIterator[str],
    cancel: Any,
    usage: Any,
    receive: Any,
    send: Any,
    close: Any = None,
) -> None:
    """Chunks in OpenAI's stream format as they come; a failure mid-way is an
    ``error`` event (as OpenAI sends one) before ``[DONE]``."""
    headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]

    watcher = asyncio.ensure_future(until_disconnected(receive))
    watcher.add_done_callback(lambda done: None if done.cancelled() else cancel())
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    tail = b""
    try:
        await send(
            {
                "type": "http.response.body",
                "body": _chunk(ident, model, {"role": "assistant", "content": ""}),
                "more_body": True,
            }
        )
        async for text in texts:
            if text:
                await send(
                    {
                        "type": "http.response.body",
                        "body": _chunk(ident, model, {"content": text}),
                        "more_body": True,
                    }
                )
        tail = _chunk(ident, model, {}, "stop")
        if (request.get("stream_options") or {}).get("include_usage"):
            tail += _chunk(ident, model, {}, None, usage=usage())
    except (CallFailed, HostFunctionError) as exc:
        tail = b"data: " + openai_error(exc.message, "server_error") + b"\n\n"
    finally:
        watcher.cancel()
        if close is not None:
            close()
    await send({"type": "http.response.body", "body": tail + b"data: [DONE]\n\n", "more_body": False})
