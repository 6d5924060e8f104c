"""A test server that speaks Dgraph Alpha's HTTP wire format (no Dgraph can be
installed here): ``/query``, ``/mutate``, ``/alter``.

    python tests/servers/dgraph.py PORT

It keeps mutated nodes in memory and answers any query with them under the
block name the query starts with (``{ people(func: ...) { ... } }`` ->
``{"data": {"people": [...]}}``); a query containing ``syntax error`` gets a
Dgraph-style error. ``GET /_log`` lists what it received.
"""

from __future__ import annotations

import json
import re
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

NODES: list[dict] = []
SCHEMA: list[str] = []
LOG: list[dict] = []


def _record(request: Request, body: bytes) -> None:
    LOG.append(
        {
            "path": request.url.path,
            "query": str(request.url.query),
            "headers": dict(request.headers),
            "body": body.decode("utf-8", "replace"),
        }
    )


def _extensions() -> dict:
    return {"server_latency": {"parsing_ns": 1000, "processing_ns": 2000}, "txn": {"start_ts": 7}}


async def query(request: Request) -> JSONResponse:
    body = await request.body()
    _record(request, body)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        text = json.loads(body)["query"]
    elif ctype.startswith("application/dql"):
        text = body.decode()
    else:
        return JSONResponse({"errors": [{"message": f"Unsupported content type {ctype}"}]}, status_code=400)
    if "syntax error" in text:
        return JSONResponse(
            {
                "errors": [
                    {
                        "message": "line 1 column 3: Unrecognized character",
                        "extensions": {"code": "ErrorInvalidRequest"},
                    }
                ],
                "data": None,
            }
        )
    block = re.search(r"\{\s*(\w+)\s*\(", text)
    return JSONResponse({"data": {block.group(1) if block else "q": NODES}, "extensions": _extensions()})


async def mutate(request: Request) -> JSONResponse:
    body = await request.body()
    _record(request, body)
    if request.query_params.get("commitNow") != "true":
        return JSONResponse({"errors": [{"message": "test server only does commitNow mutations"}]})
    doc = json.loads(body)
    uids = {}
    for item in doc.get("set", []):
        uid = hex(len(NODES) + 1)
        blank = str(item.get("uid", "_:n")).removeprefix("_:")
        NODES.append({**{k: v for k, v in item.items() if k != "uid"}, "uid": uid})
        uids[blank] = uid
    for item in doc.get("delete", []):
        NODES[:] = [n for n in NODES if n["uid"] != item.get("uid")]
    return JSONResponse(
        {
            "data": {"code": "Success", "message": "Done", "queries": None, "uids": uids},
            "extensions": _extensions(),
        }
    )


async def alter(request: Request) -> JSONResponse:
    body = await request.body()
    _record(request, body)
    if request.headers.get("content-type", "").startswith("application/json"):
        doc = json.loads(body)
        if doc.get("drop_all"):
            NODES.clear()
            SCHEMA.clear()
    else:
        SCHEMA.append(body.decode())
    return JSONResponse({"data": {"code": "Success", "message": "Done"}})


async def log(_request: Request) -> JSONResponse:
    return JSONResponse(LOG)


app = Starlette(
    routes=[
        Route("/query", query, methods=["POST"]),
        Route("/mutate", mutate, methods=["POST"]),
        Route("/alter", alter, methods=["POST"]),
        Route("/_log", log),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
