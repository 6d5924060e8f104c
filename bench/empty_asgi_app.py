"""Ceiling for bench_http.py: uvicorn with an ASGI app that does nothing but
answer 200 with an empty body. No server built on uvicorn can beat it.

    python bench/empty_asgi_app.py PORT [LOOP]

LOOP is uvicorn's ``--loop`` (auto, asyncio, uvloop); auto takes uvloop when
it is installed.
"""

from __future__ import annotations

import sys

import uvicorn

START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"0")],
}
BODY = {"type": "http.response.body", "body": b""}


async def app(scope, receive, send):
    if scope["type"] == "http":
        await receive()
        await send(START)
        await send(BODY)


if __name__ == "__main__":
    loop = sys.argv[2] if len(sys.argv) > 2 else "auto"
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, loop=loop
    )
