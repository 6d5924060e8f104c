"""The REPL's commands, prompt and output."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from modrun.errors import ModrunError
from modrun.repl.backends import Backend, parse_json

HELP = {
    "version": "version - modrun version of this REPL and of the node",
    "model-list": "model-list - every model, where it comes from and its health",
    "model-info": "model-info NAME - everything about one model",
    "model-ping": "model-ping NAME - is the model up (processes alive / idle)",
    "model-execute": "model-execute NAME INPUT - run the model once (INPUT: JSON or text)",
    "model-continuous-feedback": "model-continuous-feedback NAME - feed inputs line by line; empty line ends",
    "model-create": "model-create NAME SPEC - add a registry model (SPEC: JSON) [--allow-runtime-changes]",
    "model-modify": "model-modify NAME CHANGES - change a registry model (JSON) [--allow-runtime-changes]",
    "model-delete": "model-delete NAME - remove a registry model (needs --allow-runtime-changes)",
    "functions": "functions - every function with its signature",
    "call": "call FUNCTION [INPUT] - run a function",
    "inferences": "inferences [MODEL] [LIMIT] - recent model inferences",
    "help": "help - this list",
    "exit": "exit - leave (also quit, Ctrl-D)",
}
_CHANGE_ARGS = {"model-create", "model-modify"}


def _short(value: Any, width: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 1] + "…"


class Repl:
    def __init__(self, backend: Backend, console: Console | None = None) -> None:
        self.backend = backend
        self.plain = "NO_COLOR" in os.environ  # no colours and no highlighting at all
        self.console = console or Console(highlight=not self.plain, no_color=self.plain)
        self.commands: dict[str, Callable[[list[str]], None]] = {
            "version": self.version,
            "model-list": self.model_list,
            "model-info": self.model_info,
            "model-ping": self.model_ping,
            "model-execute": self.model_execute,
            "model-continuous-feedback": self.model_feedback,
            "model-create": self.model_create,
            "model-modify": self.model_modify,
            "model-delete": self.model_delete,
            "functions": self.functions,
            "call": self.call,
            "inferences": self.inferences,
            "help": self.help,
        }
        self.read_line: Callable[[str], str] = input

    # -- plumbing -----------------------------------------------------------

    def words(self) -> list[str]:
        """What completion offers: commands, model and function names."""
        names: list[str] = [*self.commands, "exit", "quit"]
        try:
            names += [m["name"] for m in self.backend.models()]
            names += [f["name"] for f in self.backend.functions()]
        except ModrunError:
            pass
        return names

    def run_line(self, line: str) -> bool:
        """Run one command line; False when the REPL should end."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        name, _, rest = line.partition(" ")
        if name in ("exit", "quit"):
            return False
        command = self.commands.get(name)
        if command is None:
            self.console.print(f"[red]unknown command {name!r}[/red]; type help")
            return True
        try:
            if name in _CHANGE_ARGS or name in ("model-execute", "call"):
                head, _, tail = rest.strip().partition(" ")
                args = [head, tail.strip()] if head else []
            else:
                args = shlex.split(rest)
            command(args)
        except ModrunError as exc:
            self.console.print(f"[red]error:[/red] {exc}")
        except (ValueError, IndexError) as exc:
            self.console.print(f"[red]usage:[/red] {HELP.get(name, name)} ({exc})")
        return True

    def _need(self, args: list[str], n: int, name: str) -> None:
        if len(args) < n or not all(args[:n]):
            raise ValueError(f"needs {n} argument{'s' if n > 1 else ''}")

    # -- commands -----------------------------------------------------------

    def help(self, _args: list[str]) -> None:
        for text in HELP.values():
            self.console.print(text)

    def version(self, _args: list[str]) -> None:
        from modrun.version import __version__

        self.console.print(
            f"modrun repl {__version__}; node {self.backend.version()} at {self.backend.where}"
        )

    def model_list(self, _args: list[str]) -> None:
        table = Table(title="models")
        for column in ("name", "provider", "source", "model", "healthy", "processes", "weights"):
            table.add_column(column)
        for m in self.backend.models():
            status = m.get("status") or {}
            procs = (
                f"{status.get('alive', '-')}/{status.get('processes', '-')}" if "processes" in status else "-"
            )
            healthy = "-" if not status else ("yes" if status.get("healthy") else "NO")
            table.add_row(
                m["name"],
                m["provider"],
                m.get("source", ""),
                m.get("sourceModel") or m.get("command") or "",
                healthy,
                procs,
                str(m.get("weightsVersion") or "-"),
            )
        self.console.print(table)

    def model_info(self, args: list[str]) -> None:
        self._need(args, 1, "model-info")
        info = self.backend.model(args[0])
        table = Table(title=args[0], show_header=False)
        for key, value in info.items():
            table.add_row(key, _short(value, 100))
        self.console.print(table)

    def model_ping(self, args: list[str]) -> None:
        self._need(args, 1, "model-ping")
        status = self.backend.model(args[0]).get("status")
        if status is None:
            self.console.print(f"{args[0]}: served over HTTP (use model-execute to try it)")
        elif status.get("healthy"):
            self.console.print(f"{args[0]}: [green]healthy[/green] {json.dumps(status)}")
        else:
            self.console.print(f"{args[0]}: [red]not healthy[/red] {json.dumps(status)}")

    def model_execute(self, args: list[str]) -> None:
        self._need(args, 2, "model-execute")
        result = self.backend.execute(args[0], parse_json(args[1]))
        self.console.print_json(json.dumps(result), highlight=not self.plain)

    def model_feedback(self, args: list[str]) -> None:
        self._need(args, 1, "model-continuous-feedback")
        self.console.print(f"feeding {args[0]}: one input per line, an empty line ends")
        while True:
            try:
                line = self.read_line(f"{args[0]}> ")
            except EOFError:
                return
            if not line.strip():
                return
            try:
                self.console.print_json(
                    json.dumps(self.backend.execute(args[0], parse_json(line))), highlight=not self.plain
                )
            except ModrunError as exc:
                self.console.print(f"[red]error:[/red] {exc}")

    def model_create(self, args: list[str]) -> None:
        self._need(args, 2, "model-create")
        spec = parse_json(args[1])
        if not isinstance(spec, dict):
            raise ValueError("SPEC must be a JSON object")
        self.backend.create(args[0], spec)
        self.console.print(f"created {args[0]}")

    def model_modify(self, args: list[str]) -> None:
        self._need(args, 2, "model-modify")
        changes = parse_json(args[1])
        if not isinstance(changes, dict):
            raise ValueError("CHANGES must be a JSON object")
        self.backend.modify(args[0], changes)
        self.console.print(f"modified {args[0]}")

    def model_delete(self, args: list[str]) -> None:
        self._need(args, 1, "model-delete")
        self.backend.delete(args[0])
        self.console.print(f"deleted {args[0]}")

    def functions(self, _args: list[str]) -> None:
        table = Table(title="functions")
        for column in ("signature", "plugin", "description"):
            table.add_column(column)
        for f in self.backend.functions():
            table.add_row(f["signature"], f["plugin"], f.get("description") or "")
        self.console.print(table)

    def call(self, args: list[str]) -> None:
        self._need(args, 1, "call")
        output, logs = self.backend.call(args[0], args[1] if len(args) > 1 else "")
        for line in logs:
            self.console.print(f"[dim]\\[{line['level']}] {line['message']}[/dim]")
        self.console.print(output, markup=False)

    def inferences(self, args: list[str]) -> None:
        model = args[0] if args and not args[0].isdigit() else None
        limit = int(args[-1]) if args and args[-1].isdigit() else 10
        table = Table(title="inferences")
        for column in ("started", "model", "function", "ms", "status", "input", "output"):
            table.add_column(column, overflow="fold")
        for r in self.backend.inferences(model, limit):
            table.add_row(
                r["startedAt"],
                r["model"],
                r.get("function") or "",
                str(r["durationMs"]),
                r["status"],
                _short(r["input"], 40),
                _short(r["output"] or r["error"], 40),
            )
        self.console.print(table)


def lines_from_prompt(repl: Repl, history_file: Path) -> Iterator[str]:
    """Lines typed at a prompt_toolkit prompt, with completion and history."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory

    history_file.parent.mkdir(parents=True, exist_ok=True)
    session: PromptSession = PromptSession(history=FileHistory(str(history_file)))
    repl.read_line = lambda prompt: session.prompt(prompt)
    while True:
        completer = WordCompleter(repl.words(), sentence=True, match_middle=False)
        try:
            yield session.prompt("modrun> ", completer=completer)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
