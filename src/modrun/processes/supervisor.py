"""``modrun serve --processes N``: N node processes on one port, kept running.

Start: the metadata schema is checked (and migrated) once, spools of process
slots that no longer exist are handed to slot 0, the sockets are bound, then
process 0 starts alone: it compiles the plugins into the shared module cache,
and once it has loaded them the others start and load the compiled modules
from there. The processes begin to serve together, when all of them can.

A process that dies is started again on the same socket; if it keeps dying
within seconds of starting, the restarts back off up to 30 s. SIGHUP replaces
the processes one at a time (after an upgrade of modrun, say): each new one
starts on its slot's socket beside the old, and the old one gets SIGTERM once
the new one serves, so no connection is refused and no call is cut short.
SIGTERM or SIGINT is passed to every process; each finishes its calls in
flight (see api/server.py), and the supervisor exits 0 when all of them did.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from modrun.api.server import RETIRE
from modrun.config.slot import ProcessSlot
from modrun.errors import ConfigError
from modrun.node.settings import ServeSettings
from modrun.processes.sockets import listen_sockets

log = logging.getLogger("modrun.processes")

START_TIMEOUT = 300.0  # slot 0 compiles every plugin before the others start
STABLE_AFTER = 10.0  # a process that ran this long before dying is restarted at once
MAX_BACKOFF = 30.0


@dataclass
class _Slot:
    index: int
    sock: socket.socket
    process: Any = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = 0.0
    restart_at: float | None = None
    ready: Any = None  # set by the process once its plugins are loaded


class Supervisor:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.count = settings.processes
        self._mp = multiprocessing.get_context("spawn")
        self._stopping = False
        self._run_dir = Path(tempfile.mkdtemp(prefix="modrun-"))  # mkdtemp makes it 0700
        self._slots: list[_Slot] = []
        self._go = self._mp.Event()  # set once every process has loaded: they begin to serve
        self._retiring: list[Any] = []  # processes replaced by SIGHUP, finishing their calls
        self._replace_all = False  # SIGHUP asked for new processes

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; the exit status for the command."""
        s = self.settings
        try:
            prepare_storage(s)
            sockets = listen_sockets(s.host, s.port, self.count)
        except ConfigError:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            raise
        self._slots = [_Slot(i, sock) for i, sock in enumerate(sockets)]
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._ask_replace)
        port = sockets[0].getsockname()[1]
        log.info("starting %d processes on http://%s:%d", self.count, s.host, port)
        try:
            status = self._first_start()
            if status is not None:
                return status
            self._go.set()
            return self._watch()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._terminate_all()
            for sock in set(sockets):
                sock.close()
            shutil.rmtree(self._run_dir, ignore_errors=True)

    # -- processes ----------------------------------------------------------

    def _start(self, slot: _Slot) -> None:
        from modrun.processes.child import serve_process

        settings = replace(
            self.settings,
            slot=ProcessSlot(slot.index, self.count, self._run_dir, slot.restarts),
        )
        ready = self._mp.Event()
        process = self._mp.Process(
            target=serve_process,
            args=(settings, slot.sock, ready, self._go),
            name=f"modrun-serve-{slot.index}",
            daemon=False,
        )
        process.start()
        slot.process, slot.ready = process, ready
        slot.started_at, slot.restart_at = time.monotonic(), None
        log.info("process %d started (pid %d)", slot.index, process.pid)

    def _first_start(self) -> int | None:
        """Start slot 0, then the others, and wait until all have loaded; an
        exit status if one could not."""
        deadline = time.monotonic() + START_TIMEOUT
        for group in (self._slots[:1], self._slots[1:]):
            for slot in group:
                self._start(slot)
            for slot in group:
                while not slot.ready.wait(0.2):
                    if not slot.process.is_alive():
                        code = slot.process.exitcode
                        log.error("process %d exited with status %s before serving", slot.index, code)
                        return code if code and code > 0 else 1
                    if self._stopping:
                        return 0
                    if time.monotonic() > deadline:
                        log.error("process %d did not load within %ds", slot.index, START_TIMEOUT)
                        return 1
        return None

    def _processes(self) -> list[Any]:
        return [slot.process for slot in self._slots if slot.process is not None] + self._retiring

    def _watch(self) -> int:
        while True:
            if self._replace_all and not self._stopping:
                self._replace_all = False
                self._replace_processes()
            alive = [process for process in self._processes() if process.is_alive()]
            if self._stopping and not alive:
                return 0 if all(process.exitcode == 0 for process in self._processes()) else 1
            wait([process.sentinel for process in alive], timeout=0.5)
            self._retiring = [process for process in self._retiring if process.is_alive() or self._stopping]
            now = time.monotonic()
            for slot in self._slots:
                if self._stopping:
                    break
                if slot.restart_at is not None:
                    if now >= slot.restart_at:
                        self._start(slot)
                elif slot.process is not None and not slot.process.is_alive():
                    self._schedule_restart(slot, now)

    def _schedule_restart(self, slot: _Slot, now: float) -> None:
        process = slot.process
        lived = now - slot.started_at
        code = process.exitcode
        cause = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"status {code}"
        slot.backoff = 0.0 if lived >= STABLE_AFTER else min(MAX_BACKOFF, max(0.5, slot.backoff * 2))
        slot.restarts += 1
        slot.restart_at = now + slot.backoff
        log.error(
            "process %d (pid %d) died after %.1fs (%s); restarting it%s",
            slot.index,
            process.pid,
            lived,
            cause,
            f" in {slot.backoff:g}s" if slot.backoff else "",
        )

    def _ask_replace(self, _signum: int, _frame: Any) -> None:
        self._replace_all = True

    def _replace_processes(self) -> None:
        """SIGHUP: a new process per slot, one slot at a time; the old one is
        told to stop once the new one serves."""
        log.info("SIGHUP: replacing %d processes one at a time", self.count)
        for slot in self._slots:
            old = slot.process
            self._start(slot)
            while not slot.ready.wait(0.2):
                if self._stopping:
                    return
                if not slot.process.is_alive():
                    log.error(
                        "the new process %d exited with status %s; the old one (pid %d) keeps serving",
                        slot.index,
                        slot.process.exitcode,
                        old.pid,
                    )
                    slot.process = old
                    return
            if old is not None and old.is_alive():
                os.kill(old.pid, RETIRE)
                self._retiring.append(old)
        log.info("SIGHUP: every process replaced")

    # -- stopping -----------------------------------------------------------

    def _stop(self, signum: int, _frame: Any) -> None:
        if not self._stopping:
            log.info("%s: stopping %d processes", signal.Signals(signum).name, self.count)
        self._stopping = True
        for slot in self._slots:
            slot.sock.close()  # the processes' copies stop accepting; nothing may wait in ours
        for process in self._processes():
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    def _terminate_all(self) -> None:
        """Processes still running when the supervisor leaves (an error) are stopped."""
        grace = self.settings.timeout + 5
        for process in self._processes():
            if process.is_alive():
                process.terminate()
        for process in self._processes():
            process.join(grace)
            if process.is_alive():
                process.kill()


def prepare_storage(settings: ServeSettings) -> None:
    """What N processes must not race on: the schema migration, and spools of
    slots a larger ``--processes`` left behind (slot 0 replays them)."""
    from modrun.db.engine import database_url, make_engine
    from modrun.db.migrate import ensure_schema

    url = database_url(settings.db, settings.storage_path)
    engine = make_engine(url)
    try:
        ensure_schema(engine, url, settings.migrate)
    finally:
        engine.dispose()
    spool = Path(settings.storage_path) / "spool"
    for orphan in sorted(spool.glob("p*")):
        index = orphan.name[1:]
        if not index.isdigit() or int(index) < settings.processes:
            continue
        for part in sorted(orphan.glob("*.jsonl")):
            rows = part.read_text(encoding="utf-8")
            with open(spool / part.name, "a", encoding="utf-8") as out:
                out.write(rows if rows.endswith("\n") or not rows else rows + "\n")
            part.unlink()
        shutil.rmtree(orphan, ignore_errors=True)
