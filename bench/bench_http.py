"""HTTP requests/s of a no-op function: `modrun serve` vs Starlette + `extism`.

    python bench/bench_http.py [--seconds 5] [--rounds 2]

Both servers run under uvicorn with the same settings on loopback and serve
the C example's `noop` through `POST /functions/noop`; wrk (Debian package
`wrk`) drives them with 1 and 64 connections. Rounds alternate the order; the
best round per side is reported with the modrun/peer ratio (higher is better).

A third server, uvicorn with an empty ASGI app, is measured in the same run:
its ratio to the peer is the ceiling for any server built on uvicorn.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from _servers import free_port

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "examples/textkit-c/build/release.wasm"
POST_LUA = 'wrk.method = "POST"\nwrk.body = ""\n'
TARGET = 2.0


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.args}")
        try:
            if httpx.post(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server not ready: {url}")


def wrk(url: str, connections: int, seconds: int, script: Path, threads: int = 1) -> float:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed requests against {url}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def noop_app(tmp_path: Path) -> tuple[Path, Path]:
    """An app directory with the C example, and wrk's script that POSTs to it."""
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(PLUGIN, app / "bench.wasm")
    script = tmp_path / "post.lua"
    script.write_text(POST_LUA)
    return app, script


def have_wrk() -> bool:
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not have_wrk():
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        app, script = noop_app(tmp_path)
        ours_port, peer_port, empty_port = free_port(), free_port(), free_port()
        servers = {
            "modrun": subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "modrun",
                    "serve",
                    "--plugins",
                    str(app),
                    "--port",
                    str(ours_port),
                    "--noreload",
                    "--storagePath",
                    str(tmp_path / "storage"),
                    "--logLevel",
                    "warning",
                    "--processes",
                    "1",
                ]
            ),
            "peer": subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).with_name("peer_extism_app.py")),
                    str(PLUGIN),
                    str(peer_port),
                ]
            ),
            "empty": subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("empty_asgi_app.py")), str(empty_port)]
            ),
        }
        urls = {
            "modrun": f"http://127.0.0.1:{ours_port}/functions/noop",
            "peer": f"http://127.0.0.1:{peer_port}/functions/noop",
            "empty": f"http://127.0.0.1:{empty_port}/functions/noop",
        }
        try:
            for name, url in urls.items():
                wait_ready(url, servers[name])
                wrk(url, 8, 1, script)  # warm up
            print(f"wrk, {args.seconds}s per run, best of {args.rounds} rounds; POST /functions/noop")
            print(
                f"{'connections':<12} {'modrun req/s':>13} {'peer req/s':>11} {'ratio':>6}  target"
                f"{'':13}{'empty app req/s':>16} {'ceiling':>8}"
            )
            failed = False
            for connections in (1, 64):
                best = {"modrun": 0.0, "peer": 0.0, "empty": 0.0}
                for r in range(args.rounds):
                    order = ["modrun", "peer", "empty"] if r % 2 == 0 else ["empty", "peer", "modrun"]
                    for name in order:
                        best[name] = max(best[name], wrk(urls[name], connections, args.seconds, script))
                ratio = best["modrun"] / best["peer"]
                failed |= ratio < TARGET
                verdict = "ok" if ratio >= TARGET else "MISSED"
                ceiling = best["empty"] / best["peer"]
                print(
                    f"{connections:<12} {best['modrun']:>13.0f} {best['peer']:>11.0f} {ratio:>6.2f}  "
                    f">= {TARGET:g}  {verdict:<6}  {best['empty']:>16.0f} {ceiling:>8.2f}"
                )
        finally:
            for proc in servers.values():
                proc.terminate()
                proc.wait(timeout=10)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
