"""Running an ASGI app under uvicorn the way every modrun server does."""

from __future__ import annotations

from typing import Any


def run_http(app: Any, host: str, port: int, proxy_headers: bool = False) -> None:
    """Serve ``app`` until SIGINT/SIGTERM: modrun's own logging, no access log,
    lifespan on, 10 s for requests in flight to finish."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        proxy_headers=proxy_headers,
        server_header=False,
    )
    uvicorn.Server(config).run()
