from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from support import (
    EXAMPLES,
    HELLO_AS,
    TEST_SOURCES,
    TEXTKIT_C,
    ModrunServer,
    build_c,
    build_wat,
)

# Servers the tests start run as one process unless a test asks for more
# (the default is one per core): startup stays quick and logs stay in one place.
os.environ.setdefault("MODRUN_PROCESSES", "1")


@pytest.fixture(scope="session")
def built_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Test plugins built from source for this run."""
    out = tmp_path_factory.mktemp("built")
    build_wat(TEST_SOURCES / "sandbox.wat", out / "sandbox.wasm")
    build_c(TEST_SOURCES / "wasi_probe.c", out / "wasi_probe.wasm")
    return out


@pytest.fixture(scope="session")
def sandbox_wasm(built_dir: Path) -> Path:
    return built_dir / "sandbox.wasm"


@pytest.fixture(scope="session")
def wasi_probe_wasm(built_dir: Path) -> Path:
    return built_dir / "wasi_probe.wasm"


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    for wasm in (HELLO_AS, TEXTKIT_C):
        assert wasm.is_file(), f"{wasm} is missing: run `make examples`"
    return EXAMPLES


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    path = tmp_path / "storage"
    path.mkdir()
    return path


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    path = tmp_path / "app"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def example_server(tmp_path_factory: pytest.TempPathFactory, examples_dir: Path):
    """One server on the bundled examples, shared by a module's tests."""
    storage = tmp_path_factory.mktemp("example-storage")
    with ModrunServer(examples_dir, storage, "--noreload") as server:
        yield server


@pytest.fixture(scope="module")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory, built_dir: Path):
    """A server on the misbehaving test plugins with tight limits."""
    app = tmp_path_factory.mktemp("sandbox-app")
    shutil.copy(built_dir / "sandbox.wasm", app / "sandbox.wasm")
    shutil.copy(built_dir / "wasi_probe.wasm", app / "wasi_probe.wasm")
    storage = tmp_path_factory.mktemp("sandbox-storage")
    with ModrunServer(app, storage, "--noreload", "--timeout", "1s", "--maxMemory", "32MiB") as server:
        yield server


@pytest.fixture(scope="session")
def bridge_wasm(built_dir: Path) -> Path:
    return build_c(TEST_SOURCES / "bridge.c", built_dir / "bridge.wasm")


def _serve_script(script: str, tmp_path_factory: pytest.TempPathFactory):
    import subprocess
    import sys

    import httpx

    from support import free_port, wait_until

    port = free_port()
    log = tmp_path_factory.mktemp("server-log") / "log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "servers" / script), str(port)],
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/_log", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=20, what=f"{script} on {url}")
    return proc, url


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory):
    """OpenAI-compatible / KServe / echo server (tests/servers/apis.py)."""
    proc, url = _serve_script("apis.py", tmp_path_factory)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def dgraph_server(tmp_path_factory: pytest.TempPathFactory):
    proc, url = _serve_script("dgraph.py", tmp_path_factory)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def postgres():
    from databases import PrivatePostgres

    pg = PrivatePostgres()
    pg.start()
    yield pg
    pg.cleanup()


@pytest.fixture(scope="session")
def mariadb():
    from databases import MariaDB

    db = MariaDB()
    yield db
    db.cleanup()


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory):
    """A real moto_server process (S3, Secrets Manager) and the AWS settings to reach it."""
    from support import MotoServer

    server = MotoServer(tmp_path_factory.mktemp("moto") / "log").start()
    yield server.env
    server.stop()


@pytest.fixture(scope="session")
def sshd():
    from databases import PrivateSshd

    server = PrivateSshd()
    yield server
    server.cleanup()
