"""SIGTERM: the node stops accepting, finishes every call it accepted, writes
its inference history, and exits 0."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from modrun.db.engine import make_engine
from support import EXAMPLES, ModrunServer, wait_until


def test_sigterm_loses_no_accepted_request(tmp_path: Path, sandbox_wasm: Path):
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(sandbox_wasm, app / "sandbox.wasm")
    (tmp_path / "state").mkdir()
    server = ModrunServer(app, tmp_path / "state", "--noreload", "--timeout", "20s").start()
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            # "busy" spins input length x 100,000 iterations: a few hundred ms to a few seconds
            r = httpx.post(server.url + "/functions/busy", content=b"x" * 4000, timeout=60)
            outcome = (r.status_code, r.text)
        except httpx.HTTPError as exc:
            outcome = (0, type(exc).__name__)
        with lock:
            answers.append(outcome)

    callers = [threading.Thread(target=call) for _ in range(8)]
    for caller in callers:
        caller.start()
    metrics = lambda: httpx.get(server.url + "/metrics").text  # noqa: E731
    wait_until(
        lambda: "modrun_calls_in_flight 8.0" in metrics() or len(answers) > 0, timeout=10, what="calls"
    )
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    try:  # a new connection after SIGTERM is refused: the node no longer accepts
        late = httpx.post(server.url + "/functions/noop", timeout=2).status_code
    except httpx.HTTPError:
        late = None
    for caller in callers:
        caller.join(60)
    code = server.proc.wait(30)
    assert code == 0, server.log()
    assert answers.count((200, "k")) == 8, answers  # every accepted call finished, in flight or not
    assert late in (None, 503)


def test_sigterm_writes_the_inference_history(tmp_path: Path):
    storage = tmp_path / "state"
    storage.mkdir()
    url = f"sqlite:///{storage / 'history.db'}"
    server = ModrunServer(EXAMPLES, storage, "--noreload", "--db", url, "--migrate").start()
    for i in range(20):
        assert (
            httpx.post(server.url + "/functions/mood", content=f"a good day {i}".encode()).status_code == 200
        )
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(30) == 0
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT count(*) FROM inferences")).scalar()
    finally:
        engine.dispose()
    assert rows == 20
