"""``ssh`` executor: the same process protocol, over an SSH session (asyncssh).

Host keys are checked by default (``~/.ssh/known_hosts``, or the model's
``knownHosts`` file); ``"knownHosts": "none"`` turns the check off explicitly.
Authentication: ``password`` and/or ``privateKey`` (a file path or the PEM text,
typically from a ``{{SECRET}}``). The command runs as ``cd <workdir> && exec
<command>``; ``env`` entries are passed as ``env K=V`` in front of it, since
most sshd configurations refuse client environment variables.
"""

from __future__ import annotations

import asyncio
import queue
import shlex
import threading
from collections import deque
from collections.abc import Mapping
from functools import cache
from typing import Any

from modrun.errors import HostFunctionError
from modrun.models.executors.process import EOF_MARK, stderr_logger

CONNECT_TIMEOUT = 15.0


@cache
def _loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True, name="modrun-ssh").start()
    return loop


def _run(coro: Any, timeout: float) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, _loop()).result(timeout)


class SshChannel:
    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        user: str,
        command: str,
        workdir: str,
        env: Mapping[str, str],
        password: str | None,
        private_key: str | None,
        known_hosts: str | None,
    ) -> None:
        self.lines: queue.Queue = queue.Queue()
        self.stderr_tail: deque = deque(maxlen=20)
        self._log = stderr_logger(name)
        self._conn: Any = None
        self._proc: Any = None
        prefix = ("env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " ") if env else ""
        remote = f"cd {shlex.quote(workdir)} && exec {prefix}{command}"
        try:
            _run(
                self._open(host, port, user, password, private_key, known_hosts, remote), CONNECT_TIMEOUT + 5
            )
        except Exception as exc:  # asyncssh raises many kinds; all mean "cannot start"
            raise HostFunctionError(
                f"model {name}: cannot start over SSH at {user}@{host}:{port}: {type(exc).__name__}: {exc}"
            ) from None

    async def _open(
        self,
        host: str,
        port: int,
        user: str,
        password: str | None,
        private_key: str | None,
        known_hosts: str | None,
        remote: str,
    ) -> None:
        import asyncssh

        keys = None
        if private_key:
            keys = (
                [asyncssh.import_private_key(private_key)] if "PRIVATE KEY" in private_key else [private_key]
            )
        options: dict[str, Any] = {
            "username": user,
            "port": port,
            "client_keys": keys,
            "password": password,
            "connect_timeout": CONNECT_TIMEOUT,
        }
        if known_hosts == "none":
            options["known_hosts"] = None
        elif known_hosts:
            options["known_hosts"] = known_hosts
        self._conn = await asyncssh.connect(host, **options)
        self._proc = await self._conn.create_process(remote, encoding="utf-8")
        asyncio.get_running_loop().create_task(self._pump_stdout())
        asyncio.get_running_loop().create_task(self._pump_stderr())

    async def _pump_stdout(self) -> None:
        try:
            async for line in self._proc.stdout:
                self.lines.put(line)
        finally:
            self.lines.put(EOF_MARK)

    async def _pump_stderr(self) -> None:
        async for line in self._proc.stderr:
            self.stderr_tail.append(line.rstrip())
            self._log.info("%s", line.rstrip())

    async def _write(self, data: bytes) -> None:
        self._proc.stdin.write(data.decode())
        await self._proc.stdin.drain()

    def write(self, data: bytes) -> None:
        try:
            _run(self._write(data), 10)
        except Exception as exc:
            raise OSError(str(exc)) from None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.exit_status is None and not self._proc.stdout.at_eof()

    def kill(self) -> None:
        async def _kill() -> None:
            try:
                self._proc.kill()
            except Exception:
                pass
            self._conn.close()

        try:
            _run(_kill(), 5)
        except Exception:
            pass

    def close(self, exit_request: bytes, grace: float) -> None:
        async def _close() -> None:
            try:
                if exit_request:
                    self._proc.stdin.write(exit_request.decode())
                self._proc.stdin.write_eof()
                await asyncio.wait_for(self._proc.wait_closed(), grace)
            except Exception:
                pass
            self._conn.close()

        try:
            _run(_close(), grace + 2)
        except Exception:
            self.kill()
