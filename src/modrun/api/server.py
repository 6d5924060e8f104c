"""Running an ASGI app under uvicorn the way every modrun server does."""

from __future__ import annotations

import asyncio
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
    drain: float = 0.0,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM: modrun's own logging, no access log,
    lifespan on; on ``host:port``, or on ``sockets`` already listening. On
    SIGTERM it stops accepting and gives requests in flight ``grace`` seconds
    to finish (a node passes its --timeout: no call it accepted is cut short),
    then the lifespan's shutdown runs.

    With ``drain``, SIGTERM first keeps serving for that many seconds (RETIRE,
    sent when a new process replaces this one, also stops accepting: the new
    one takes new connections), with every response saying ``Connection: close``: a
    client sending on a kept-alive connection learns to reconnect rather than
    have the connection closed under the request it is sending, and one
    accepted just before the signal has the whole period to send its request."""
    import uvicorn

    draining = _Draining(app) if drain > 0 else None
    config = uvicorn.Config(
        draining or app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="asyncio",
        timeout_graceful_shutdown=max(1, int(grace + 0.999)),
        proxy_headers=proxy_headers,
        server_header=False,
    )
    _server_class(draining, drain)(config).run(sockets=sockets)


class _Draining:
    """ASGI middleware: once ``on``, every response closes its connection."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.on = False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if not self.on or scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def closing(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, closing)


RETIRE = signal.SIGUSR2  # the supervisor replaces this process: stop accepting, drain, exit


def _server_class(draining: _Draining | None = None, drain: float = 0.0) -> type:
    """uvicorn's Server, made when a server starts (uvicorn is not imported with modrun)."""
    import uvicorn

    class Server(uvicorn.Server):
        loop: asyncio.AbstractEventLoop | None = None

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().startup(sockets)

        def stop_accepting(self) -> None:
            """Close this process's listening sockets; the supervisor's and the
            siblings' copies go on listening, so no connection is refused."""
            for server in getattr(self, "servers", []):
                server.close()

        def handle_exit(self, sig: int, frame: Any) -> None:
            """With a drain period, the first signal starts it; the exit follows."""
            if draining is None or draining.on:
                super().handle_exit(sig, frame)
                return
            draining.on = True
            if sig == RETIRE and self.loop is not None:  # replaced: the new process takes new connections
                self.loop.call_soon_threadsafe(self.stop_accepting)
            timer = threading.Timer(drain, super().handle_exit, (sig, frame))
            timer.daemon = True
            timer.start()

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            """As uvicorn's, but SIGTERM and SIGINT end a graceful shutdown with
            exit status 0 (uvicorn raises the signal again, so the process would
            die of it, which supervisors count as a crash)."""
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM, RETIRE)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server
