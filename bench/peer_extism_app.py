"""The peer for bench_http.py: a minimal Starlette app that calls the `extism`
PyPI host, as someone would write it without modrun.

    python bench/peer_extism_app.py PLUGIN.wasm PORT [PROCESSES]

With PROCESSES, uvicorn runs that many worker processes on the port (its own
--workers), each with its own plugin.
"""

from __future__ import annotations

import sys
from pathlib import Path

import extism
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

plugin = extism.Plugin(Path(sys.argv[1]).read_bytes(), wasi=True)


async def call(request: Request) -> Response:
    output = plugin.call(request.path_params["name"], await request.body())
    return Response(output, media_type="text/plain")


app = Starlette(routes=[Route("/functions/{name}", call, methods=["POST"])])

if __name__ == "__main__":
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    uvicorn.run(
        "peer_extism_app:app" if workers > 1 else app,
        app_dir=str(Path(__file__).parent),
        workers=workers,
        host="127.0.0.1",
        port=int(sys.argv[2]),
        log_level="warning",
        access_log=False,
    )
