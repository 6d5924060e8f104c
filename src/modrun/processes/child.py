"""One process of ``modrun serve --processes N`` (started by the supervisor)."""

from __future__ import annotations

import ctypes
import logging
import signal
import socket
import sys
from typing import Any

from modrun.errors import ModrunError
from modrun.node.settings import ServeSettings
from modrun.processes.sockets import private_socket

log = logging.getLogger("modrun.processes")

PR_SET_PDEATHSIG = 1


def serve_process(settings: ServeSettings, sock: socket.socket, ready: Any, go: Any) -> None:
    """Serve the node on the supervisor's socket (and on a private unix socket
    its siblings read its metrics from). Once its plugins are loaded it sets
    ``ready`` and waits for ``go``: at start the port opens when every process
    can serve, so no connection waits on one still starting."""
    from modrun.logs import setup_logging
    from modrun.node.service import Node

    _stop_with_supervisor()
    setup_logging(settings.jsonlogs, settings.log_level)
    assert settings.slot is not None

    def loaded() -> None:
        ready.set()
        go.wait()

    try:
        Node(settings).serve(sockets=[sock, private_socket(str(settings.slot.socket_path()))], loaded=loaded)
    except ModrunError as exc:
        log.error("process %d: %s", settings.slot.index, exc)
        sys.exit(2)


def _stop_with_supervisor() -> None:
    """Ask Linux to send SIGTERM when the supervisor dies, even of SIGKILL, so
    no process keeps serving the port on its own."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux
        pass
