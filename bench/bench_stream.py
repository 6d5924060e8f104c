"""Streaming overhead: tokens from a model through a function to the caller,
against reading the model server directly, in one run.

    .venv/bin/python bench/bench_stream.py [--ttft 200] [--tokens 4000] [--streams 1000]

One OpenAI-compatible test server (tests/servers/apis.py, streaming with
server-sent events); a node (``modrun serve``) serving examples/chat-as, whose
``chat`` opens the model as a stream and emits each token; an orchestrator
whose gateway reaches a second node serving the same plugin. The direct side
is httpx streaming the same chat request from the model server.

* time to first token: the request sent until the first token's text is read,
  median and p90 over ``--ttft`` sequential requests with no model delay
  (target: under 2 ms added at the median);
* tokens per second over one ``--tokens``-token answer (target: at least
  0.9x direct, through the node and through the gateway);
* ``--streams`` concurrent streams on one node (40 tokens, 100 ms apart, so
  every stream is open at once): all complete?, the node's RSS per open stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _servers import model_server
from fleet_support import OrchestratorProcess
from support import CHAT_AS, ModrunServer, chat_app, run_cli, wait_until

SSE = {"Accept": "text/event-stream"}


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def direct_reader(client: httpx.Client, base: str, model: str) -> Callable[[str], tuple[float, int]]:
    """(seconds to the first token, tokens) of one streamed chat answer, direct."""

    def read(prompt: str) -> tuple[float, int]:
        body = {"model": model, "stream": True, "messages": [{"role": "user", "content": prompt}]}
        started = time.perf_counter()
        first, tokens = 0.0, 0
        with client.stream("POST", f"{base}/v1/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if not line.startswith("data: {"):
                    continue
                delta = json.loads(line[6:])["choices"]
                if delta and delta[0]["delta"].get("content"):
                    tokens += 1
                    first = first or time.perf_counter() - started
        return first, tokens

    return read


def sse_reader(client: httpx.Client, url: str) -> Callable[[str], tuple[float, int]]:
    """The same through a node or the gateway: the chat function's SSE events
    (tokens that arrive together are one event: they are counted as words)."""

    def read(prompt: str) -> tuple[float, int]:
        started = time.perf_counter()
        first, text = 0.0, []
        with client.stream("POST", f"{url}/functions/chat", content=prompt.encode(), headers=SSE) as response:
            done = False
            for line in response.iter_lines():
                if line.startswith("event: done"):
                    done = True
                elif line.startswith("data: ") and not done:
                    text.append(line[6:])
                    first = first or time.perf_counter() - started
        return first, len("".join(text).split())

    return read


def pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * p))]


def first_tokens(readers: dict[str, Callable], n: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in readers}
    for i in range(n + 10):
        for name, read in readers.items() if i % 2 else reversed(readers.items()):
            first, _tokens = read("hello there friend")
            if i >= 10:
                samples[name].append(first * 1000)
    return samples


def throughput(readers: dict[str, Callable], tokens: int) -> dict[str, float]:
    rates: dict[str, list[float]] = {name: [] for name in readers}
    for _round in range(3):
        for name, read in readers.items():
            started = time.perf_counter()
            _first, got = read(f"count:{tokens}")
            assert got == tokens, (name, got)
            rates[name].append(got / (time.perf_counter() - started))
    return {name: statistics.median(r) for name, r in rates.items()}


async def concurrent(url: str, streams: int) -> tuple[int, float]:
    """(streams that completed, seconds) for ``streams`` at once."""
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one() -> bool:
            async with client.stream("POST", f"{url}/functions/chat", content=b"count:40", headers=SSE) as r:
                lines = [line async for line in r.aiter_lines()]
            return r.status_code == 200 and "event: done" in lines

        started = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(streams)), return_exceptions=True)
        return sum(1 for r in results if r is True), time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ttft", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()
    with model_server() as base, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fast = chat_app(tmp / "fast", base, "fast")
        slow = chat_app(tmp / "slow", base, "delay-100")
        node = ModrunServer(fast, tmp / "fast", "--noreload", "--timeout", "60s").start()
        orch = OrchestratorProcess(tmp / "orch", "--keepalive", "1s").start()
        (tmp / "member").mkdir()
        shutil.copy(fast / "modrun.json", tmp / "member" / "modrun.json")
        member = ModrunServer(
            tmp / "member", tmp / "member", "--noreload", "--timeout", "60s", "--orchestrator", orch.url
        ).start()
        crowd = ModrunServer(slow, tmp / "slow", "--noreload", "--timeout", "60s", "--maxStreams", "2000")
        try:
            created = run_cli("module", "create", str(CHAT_AS), "--name", "chat", "--orchestrator", orch.url)
            assert created.returncode == 0, created.stderr
            with httpx.Client(timeout=60) as client:
                wait_until(lambda: client.post(f"{orch.url}/functions/chat", content=b"x").status_code == 200)
                readers = {
                    "direct": direct_reader(client, base, "fast"),
                    "node": sse_reader(client, node.url),
                    "gateway": sse_reader(client, orch.url),
                }
                ttft = first_tokens(readers, args.ttft)
                rates = throughput(readers, args.tokens)
            print(f"time to first token, {args.ttft} requests each, no model delay:")
            print(f"  {'':8} {'median ms':>10} {'p90 ms':>8} {'added ms':>9}")
            direct_median = statistics.median(ttft["direct"])
            for name, values in ttft.items():
                median = statistics.median(values)
                print(f"  {name:8} {median:10.2f} {pct(values, 0.9):8.2f} {median - direct_median:9.2f}")
            print(f"tokens per second, one {args.tokens}-token answer (median of 3):")
            for name, rate in rates.items():
                print(f"  {name:8} {rate:10.0f}   {rate / rates['direct']:.2f}x direct")
            node.stop()
            member.stop()
            crowd.start()
            assert crowd.proc is not None
            idle = rss_kb(crowd.proc.pid)
            peak = [idle]

            async def sample() -> None:
                while True:
                    peak.append(rss_kb(crowd.proc.pid))  # type: ignore[union-attr]
                    await asyncio.sleep(0.2)

            async def run() -> tuple[int, float]:
                sampler = asyncio.ensure_future(sample())
                try:
                    return await concurrent(crowd.url, args.streams)
                finally:
                    sampler.cancel()

            done, seconds = asyncio.run(run())
            grown = max(peak) - idle
            print(f"{args.streams} concurrent streams on one node (40 tokens 100 ms apart):")
            print(f"  completed {done}/{args.streams} in {seconds:.1f} s (4 s if all at once)")
            print(
                f"  node RSS {idle / 1024:.0f} MiB idle, {max(peak) / 1024:.0f} MiB peak: "
                f"{grown / args.streams:.0f} KiB per open stream"
            )
        finally:
            for proc in (node, member, crowd):
                if proc.proc is not None and proc.proc.poll() is None:
                    proc.stop()
            orch.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
