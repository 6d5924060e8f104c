"""modrun repl, driven through a real pseudo-terminal (pexpect)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pexpect

from support import ModrunServer, modrun_cmd

MODEL = Path(__file__).parent.parent / "models" / "model.py"


def _spawn(*args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
    cmd = modrun_cmd("repl", *args)
    child = pexpect.spawn(
        cmd[0],
        cmd[1:],
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 200),
        env={
            "TERM": "xterm",
            "PATH": "/usr/bin:/bin",
            "HOME": "/tmp",
            "PROMPT_TOOLKIT_NO_CPR": "1",
            "NO_COLOR": "1",
            **(env or {}),
        },
    )
    child.expect("modrun>")
    return child


def _enter(child: pexpect.spawn, line: str) -> None:
    child.send(line + "\r")  # the Enter key of a terminal


def _run(child: pexpect.spawn, line: str, *expect: str) -> str:
    _enter(child, line)
    for pattern in expect:
        child.expect(pattern)
    child.expect("modrun>")
    return child.before


def test_local_app_commands_completion_and_history(examples_dir, storage):
    child = _spawn("--plugins", str(examples_dir), "--storagePath", str(storage))
    try:
        _run(child, "version", "modrun repl 0.1.0")
        _run(child, "model-list", "sentiment", "embedded", "manifest")
        _run(child, "model-execute sentiment I love this", '"label": "positive"')
        child.send("model-pi\t")  # tab offers the completion
        child.expect("model-ping")
        child.send("\x15")  # Ctrl-U clears the line
        _run(child, "model-ping sentiment", "healthy")
        _run(child, "functions", r"greet\(name: String!\): String!")
        _run(child, "call greet REPL", "Hello, REPL!")
        _run(
            child,
            'model-create x {"provider": "embedded", "sourceModel": "vader"}',
            "run-time model changes are disabled",
        )
        _run(child, "inferences sentiment 5", "I love this")
        _run(child, "model-info nosuch", "no model named 'nosuch'")
        _run(child, "frobnicate", "unknown command 'frobnicate'")
        _enter(child, "exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert "model-execute sentiment I love this" in (storage / "repl_history").read_text()


def test_remote_node_runtime_changes_and_continuous_feedback(app_dir, storage, bridge_wasm):
    (app_dir / "bridge.wasm").write_bytes(bridge_wasm.read_bytes())
    spec = json.dumps({"provider": "local", "command": f"{sys.executable} {MODEL}", "protocol": "jsonl"})
    with ModrunServer(app_dir, storage, "--noreload", "--allowRuntimeChanges") as server:
        child = _spawn("--url", server.url, "--storagePath", str(storage / "repl"))
        try:
            _run(child, f"model-create echo {spec}", "created echo")
            _run(child, "model-list", "echo", "registry")
            _run(child, 'model-execute echo {"text": "remote"}', '"text": "REMOTE"')
            _enter(child, "model-continuous-feedback echo")
            child.expect("echo>")
            for word in ("one", "two"):
                _enter(child, json.dumps({"text": word}))
                child.expect(f'"text": "{word.upper()}"')
                child.expect("echo>")
            _enter(child, "")
            child.expect("modrun>")
            _run(child, 'model-modify echo {"pool": 2}', "modified echo")
            _run(child, "model-delete echo", "deleted echo")
            _run(child, "model-ping echo", "no model named 'echo'")
            _enter(child, "quit")
            child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
