"""Overload: with 1,024 connections the node answers every request, 200 or
503 with Retry-After at once, with no client timeout and no socket error;
what it sheds is counted in /metrics; one client's flood does not starve
another client."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from support import ModrunServer

LUA = Path(__file__).parent / "load" / "statuses.lua"


def wrk(url: str, connections: int, seconds: int, body: str) -> tuple[dict[int, int], dict[str, int]]:
    if shutil.which("wrk") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("wrk is missing (make test installs it)")
        pytest.skip("wrk is missing (make test installs it)")
    out = subprocess.run(
        ["wrk", "-t4", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(LUA), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        env={**os.environ, "WRK_BODY": body},
    ).stdout
    statuses = {int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", out, re.M)}
    errors = {k: int(v) for k, v in re.findall(r"(connect|read|write|timeout)=(\d+)", out)}
    return statuses, errors


@pytest.fixture(scope="module")
def busy_node(tmp_path_factory: pytest.TempPathFactory, sandbox_wasm: Path):
    root = tmp_path_factory.mktemp("overload")
    app = root / "app"
    app.mkdir()
    shutil.copy(sandbox_wasm, app / "sandbox.wasm")
    flags = ("--noreload", "--maxRunning", "8", "--maxQueue", "64", "--maxWait", "1s")
    with ModrunServer(app, root, *flags) as server:
        yield server


def test_1024_connections_get_200_or_503_and_no_errors(busy_node):
    # "busy" spins input length x 100,000 iterations: about a millisecond for 20 bytes
    statuses, errors = wrk(busy_node.url + "/functions/busy", 1024, 5, "x" * 20)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.get(200, 0) > 0 and statuses.get(503, 0) > 0, statuses  # it served, and it shed
    assert errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}, errors
    metrics = httpx.get(busy_node.url + "/metrics").text
    shed = sum(
        float(v) for v in re.findall(r'^modrun_calls_shed_total\{reason="\w+"\} (\S+)$', metrics, re.M)
    )
    assert shed >= statuses[503]
    refused = _shed_answer(busy_node.url)
    assert refused is None or (
        refused.headers["retry-after"] == "1" and "capacity" in refused.json()["error"]
    )


def _shed_answer(url: str) -> httpx.Response | None:
    """One 503 while the node is flooded, to look at (None if every call got in)."""
    found: list[httpx.Response] = []
    stop = threading.Event()

    def flood() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set() and not found:
                r = client.post(url + "/functions/busy", content=b"x" * 200)
                if r.status_code == 503:
                    found.append(r)

    workers = [threading.Thread(target=flood) for _ in range(96)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(20)
    stop.set()
    return found[0] if found else None


def test_a_flooding_client_does_not_starve_another():
    """One client filling its share of the queue is refused beyond it, and when
    places free up, clients are served in turn: the other client is next."""
    from modrun.api.admission import Admission, AdmissionLimits, Shed

    async def scenario() -> tuple[list[str], dict[str, int]]:
        admission = Admission(AdmissionLimits(max_running=1, max_queue=64, max_wait=5))
        order: list[str] = []
        await admission.enter("flood")  # the one running place

        async def call(client: str) -> None:
            try:
                await admission.enter(client)
            except Shed:
                order.append(f"shed:{client}")
                return
            order.append(client)
            admission.leave()

        floods = [asyncio.create_task(call("flood")) for _ in range(20)]  # share is 8: 12 refused
        await asyncio.sleep(0)
        other = asyncio.create_task(call("other"))
        await asyncio.sleep(0)
        admission.leave()
        await asyncio.gather(*floods, other)
        return order, dict(admission.shed)

    order, shed = asyncio.run(scenario())
    served = [o for o in order if not o.startswith("shed:")]
    assert shed["client_share"] == 12 and order.count("shed:flood") == 12
    assert served.index("other") <= 1, served  # not behind the flood's eight
    assert len(served) == 9
