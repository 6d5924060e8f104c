"""Listening sockets for N processes on one port.

Each process gets its own socket bound with SO_REUSEPORT, so the kernel spreads
new connections evenly across them (one shared socket lets whichever process
wakes first take a burst of them). The supervisor keeps every socket open:
while a process restarts, connections hashed to its socket wait in the backlog
instead of being refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket

from modrun.errors import ConfigError

BACKLOG = 2048


def listen_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on ``host:port``; a clear error when the
    port is taken (SO_REUSEPORT alone would quietly share it with whoever
    holds it as the same user)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    _ensure_free(family, host, port)
    if not hasattr(socket, "SO_REUSEPORT"):  # not Linux or BSD: one socket shared by all
        return [_listening(family, host, port, reuse_port=False)] * count
    first = _listening(family, host, port, reuse_port=True)
    port = first.getsockname()[1]  # --port 0: every socket on the port the first one got
    return [first, *(_listening(family, host, port, reuse_port=True) for _ in range(count - 1))]


def _ensure_free(family: int, host: str, port: int) -> None:
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"{host}:{port} is already in use") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    finally:
        probe.close()


def _listening(family: int, host: str, port: int, *, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def private_socket(path: str) -> socket.socket:
    """A unix socket only this user can reach (its directory is 0700): the
    processes ask each other for their metrics through it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by a process that died
    sock.bind(path)
    sock.listen(128)
    return sock
