"""A test server speaking real wire formats: OpenAI chat completions and
embeddings, KServe v1 predict, plus echo/status routes for HTTP tests.

    python tests/servers/apis.py PORT

Model names steer failures: ``flaky-*`` answers 429 twice, then succeeds;
``broken`` always answers 503; ``slow`` takes 3 s. ``GET /_log`` lists the
requests received (method, path, query, headers) so tests can check what
modrun sent; ``POST /_reset`` clears it.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
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
        Route("/_reset", reset, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
