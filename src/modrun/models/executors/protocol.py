"""Wire protocols spoken with a model process over its stdin/stdout.

* ``mer`` (Model-executor-runtime): the model prints ``@!#READY#!@`` once
  loaded; a request is ``@!#START#!@``, one line of input, ``@!#STOP#!@``; the
  reply is framed the same way; ``@!#EXIT#!@`` asks it to exit. Tokens are
  configurable.
* ``jsonl``: one JSON document per line each way; a first line
  ``{"ready": true}`` is awaited when ``ready`` is set (and never taken for a
  reply otherwise).

Inputs are sent as one line of JSON; a reply that parses as JSON is returned
as JSON, otherwise as a string. Lines on stderr become log lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tokens:
    ready: str = "@!#READY#!@"
    start: str = "@!#START#!@"
    stop: str = "@!#STOP#!@"
    exit: str = "@!#EXIT#!@"


def encode_input(payload: Any) -> str:
    line = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return line.replace("\n", " ")


def decode_output(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class Mer:
    name = "mer"

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    def is_ready(self, line: str) -> bool:
        return line.strip() == self.tokens.ready

    def request(self, payload: Any) -> bytes:
        t = self.tokens
        return f"{t.start}\n{encode_input(payload)}\n{t.stop}\n".encode()

    def feed(self, line: str, buffer: list[str]) -> Any | None:
        """Collect reply lines; returns the decoded reply when it is complete."""
        stripped = line.rstrip("\n")
        if stripped.strip() == self.tokens.start:
            buffer.clear()
            buffer.append("")  # marks: inside a reply
            return None
        if stripped.strip() == self.tokens.stop and buffer:
            return _Reply(decode_output("\n".join(buffer[1:])))
        if buffer:
            buffer.append(stripped)
        return None

    def exit_request(self) -> bytes:
        return f"{self.tokens.exit}\n".encode()


class JsonLines:
    name = "jsonl"

    def __init__(self, wait_ready: bool) -> None:
        self.wait_ready = wait_ready

    def is_ready(self, line: str) -> bool:
        try:
            return json.loads(line).get("ready") is True
        except (ValueError, AttributeError):
            return False

    def request(self, payload: Any) -> bytes:
        return (json.dumps(payload, separators=(",", ":")) + "\n").encode()

    def feed(self, line: str, buffer: list[str]) -> Any | None:
        if not line.strip() or self.is_ready(line):  # a late or unexpected ready line is not a reply
            return None
        return _Reply(decode_output(line))

    def exit_request(self) -> bytes:
        return b""


@dataclass(frozen=True)
class _Reply:
    value: Any
