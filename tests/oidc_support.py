"""An OpenID Connect provider process for tests (tests/oidc_provider.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from support import free_port, wait_until

USERS = {
    "alice": {
        "password": "alice-pw",
        "sub": "idp-alice-1",
        "email": "alice@corp.example",
        "groups": ["ml-team", "unknown-group"],
    },
}


class OidcProvider:
    def __init__(self, root: Path) -> None:
        self.users = root / "users.json"
        self.users.write_text(json.dumps(USERS))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> OidcProvider:
        script = Path(__file__).parent / "oidc_provider.py"
        self.proc = subprocess.Popen(
            [sys.executable, str(script), "--port", str(self.port), "--users", str(self.users)]
        )

        def up() -> bool:
            try:
                return httpx.get(self.url + "/.well-known/openid-configuration", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=20, what="OIDC provider")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(10)


def oidc_orchestrator(storage: Path, issuer: str):
    """A started orchestrator (``--auth oidc``) trusting ``issuer`` for the console's sign-in."""
    from control_support import ADMIN_PASSWORD
    from fleet_support import OrchestratorProcess

    return OrchestratorProcess(
        storage,
        "--oidcIssuer",
        issuer,
        "--oidcAudience",
        "modrun-console",
        env={"MODRUN_ADMIN_PASSWORD": ADMIN_PASSWORD},
        auth="oidc",
    ).start()
