"""Running an ASGI app under uvicorn the way every modrun server does."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any


def run_http(
    app: Any,
    host: str,
    port: int,
    proxy_headers: bool = False,
    grace: float = 10.0,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM: modrun's own logging, no access log,
    lifespan on; on ``host:port``, or on ``sockets`` already listening. On
    SIGTERM it stops accepting and gives requests in flight ``grace`` seconds
    to finish (a node passes its --timeout: no call it accepted is cut short),
    then the lifespan's shutdown runs."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=max(1, int(grace + 0.999)),
        proxy_headers=proxy_headers,
        server_header=False,
    )
    _server_class()(config).run(sockets=sockets)


def _server_class() -> type:
    """uvicorn's Server, made when a server starts (uvicorn is not imported with modrun)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            """As uvicorn's, but SIGTERM and SIGINT end a graceful shutdown with
            exit status 0 (uvicorn raises the signal again, so the process would
            die of it, which supervisors count as a crash)."""
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server
