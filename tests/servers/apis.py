"""A test server speaking real wire formats: OpenAI chat completions and
embeddings, KServe v1 predict, plus echo/status routes for HTTP tests.

    python tests/servers/apis.py PORT

Model names steer failures: ``flaky-*`` answers 429 twice, then succeeds;
``broken`` always answers 503; ``slow`` takes 3 s.

Chat completions stream with ``"stream": true`` (server-sent events, one
event per word of the answer, then a usage event when
``stream_options.include_usage``, then ``[DONE]``). A model named
``delay-<ms>`` waits that long before each token; ``break-after-<n>`` sends
an error event after n tokens; ``pad-<n>`` makes each token n characters
longer. A prompt ``count:N`` is answered "1 2 ... N".
``GET /_streams`` tells how many streams started, finished and were closed by
the client early, and when the last one was closed. ``GET /_log`` lists the
requests received (method, path, query, headers) so tests can check what
modrun sent; ``POST /_reset`` clears it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

LOG: list[dict] = []
COUNTERS: dict[str, int] = {}


def _record(request: Request, body: bytes) -> None:
    LOG.append(
        {
            "method": request.method,
            "path": request.url.path,
            "query": str(request.url.query),
            "headers": dict(request.headers),
            "body": body.decode("utf-8", "replace"),
        }
    )


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error", "code": None}},
        status_code=status,
        headers=headers,
    )


async def _failure(model: str) -> JSONResponse | None:
    if model.startswith("flaky"):
        COUNTERS[model] = COUNTERS.get(model, 0) + 1
        if COUNTERS[model] % 3 != 0:
            return _error(429, "Rate limit reached", **{"retry-after": "0"})
    if model == "broken":
        return _error(503, "The server is overloaded")
    if model == "slow":
        await asyncio.sleep(3)
    return None


async def chat(request: Request) -> Response:
    body = await request.body()
    _record(request, body)
    doc = await request.json()
    model = doc.get("model")
    if not model:
        return _error(400, "you must provide a model parameter")
    messages = doc.get("messages")
    if not isinstance(messages, list) or not messages:
        return _error(400, "'messages' is a required property")
    failure = await _failure(model)
    if failure is not None:
        return failure
    prompt = str(messages[-1].get("content", ""))
    answer = f"echo: {prompt}"
    if prompt.startswith("count:") and prompt[6:].isdigit():
        answer = " ".join(str(i) for i in range(1, int(prompt[6:]) + 1))
    if doc.get("stream"):
        return _stream(doc, model, prompt, answer, hashlib.sha1(body).hexdigest()[:24])
    return JSONResponse(
        {
            "id": "chatcmpl-" + hashlib.sha1(body).hexdigest()[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": len(prompt.split()),
                "completion_tokens": len(answer.split()),
                "total_tokens": len(prompt.split()) + len(answer.split()),
            },
        }
    )


STREAMS: dict[str, float] = {"started": 0, "finished": 0, "closed_early": 0, "last_closed_at": 0.0}


def _stream(doc: dict, model: str, prompt: str, answer: str, ident: str) -> StreamingResponse:
    delay = int(model[6:]) / 1000 if model.startswith("delay-") and model[6:].isdigit() else 0.0
    break_after = int(model[12:]) if model.startswith("break-after-") and model[12:].isdigit() else -1
    tokens = re.findall(r"\S+\s*", answer)
    if model.startswith("pad-") and model[4:].isdigit():
        tokens = [token + "x" * int(model[4:]) for token in tokens]
    usage = {
        "prompt_tokens": len(prompt.split()),
        "completion_tokens": len(tokens),
        "total_tokens": len(prompt.split()) + len(tokens),
    }

    def event(choices: list, **extra: object) -> str:
        chunk = {"id": "chatcmpl-" + ident, "object": "chat.completion.chunk", "created": int(time.time())}
        return "data: " + json.dumps({**chunk, "model": model, "choices": choices, **extra}) + "\n\n"

    async def events():
        STREAMS["started"] += 1
        try:
            yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            for i, token in enumerate(tokens):
                if i == break_after:
                    yield "data: " + json.dumps({"error": {"message": "the model crashed"}}) + "\n\n"
                    return
                if delay:
                    await asyncio.sleep(delay)
                yield event([{"index": 0, "delta": {"content": token}, "finish_reason": None}])
            yield event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            if (doc.get("stream_options") or {}).get("include_usage"):
                yield event([], usage=usage)
            yield "data: [DONE]\n\n"
            STREAMS["finished"] += 1
        except (asyncio.CancelledError, GeneratorExit):
            STREAMS["closed_early"] += 1
            STREAMS["last_closed_at"] = time.time()
            raise

    return StreamingResponse(events(), media_type="text/event-stream")


async def streams(_request: Request) -> Response:
    return JSONResponse(STREAMS)


async def embeddings(request: Request) -> Response:
    body = await request.body()
    _record(request, body)
    doc = await request.json()
    texts = doc.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not doc.get("model"):
        return _error(400, "'input' and 'model' are required")
    failure = await _failure(doc["model"])
    if failure is not None:
        return failure
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": [b / 255 for b in hashlib.sha256(str(t).encode()).digest()[:8]],
        }
        for i, t in enumerate(texts)
    ]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": doc["model"],
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }
    )


async def predict(request: Request) -> Response:
    body = await request.body()
    _record(request, body)
    name = request.path_params["name"]
    doc = await request.json()
    instances = doc.get("instances")
    if not isinstance(instances, list):
        return JSONResponse({"error": "instances must be a list"}, status_code=400)
    return JSONResponse({"model_name": name, "predictions": [sum(x) for x in instances]})


async def echo(request: Request) -> Response:
    body = await request.body()
    _record(request, body)
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "headers": dict(request.headers),
            "body": body.decode("utf-8", "replace"),
        }
    )


async def status(request: Request) -> Response:
    _record(request, b"")
    return Response(f"status {request.path_params['code']}", status_code=int(request.path_params["code"]))


async def log(_request: Request) -> Response:
    return JSONResponse(LOG)


async def reset(_request: Request) -> Response:
    LOG.clear()
    COUNTERS.clear()
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models/{name}:predict", predict, methods=["POST"]),
        Route("/echo/{rest:path}", echo, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/status/{code:int}", status),
        Route("/_log", log),
        Route("/_streams", streams),
        Route("/_reset", reset, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
