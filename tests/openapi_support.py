"""schemathesis, run as its users run it: the CLI against a live /openapi.json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def schemathesis(url: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("schemathesis")), "run", url, "--checks", CHECKS]
    return subprocess.run(
        [*command, "--max-examples", "15", "--seed", "11", *extra],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def failures(run: subprocess.CompletedProcess[str]) -> str:
    """What schemathesis found, without its advice on coverage."""
    found = run.stdout.find("FAILURES")
    return (run.stdout[found : found + 12000] if found >= 0 else run.stdout[-4000:]) + run.stderr[-2000:]
