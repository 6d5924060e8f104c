"""Every promise in docs/security.md names a test, and every test it names
exists: the threat model cannot point at a test that was renamed or removed.
(In a row, ``…::name`` is a test of the file named just before it.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "security.md"
NAMED = re.compile(r"`(tests/[\w/]+\.py|…)(?:::(\w+))?`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def _promises() -> list[str]:
    text = DOC.read_text()
    section = text[text.index("## Promises") : text.index("## Secrets and how they are stored")]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [row for row in rows if not row.startswith("| promise ") and not row.startswith("|---")]


def test_every_promise_names_a_test_that_exists():
    promises = _promises()
    assert len(promises) > 30
    for row in promises:
        proof = row.rstrip(" |").rsplit(" | ", 1)[-1]
        named = NAMED.findall(proof)
        assert named, f"a promise names no test: {row}"
        last = None
        for file, name in named:
            file = last if file == "…" else file
            assert file is not None, f"'…' before any file in: {row}"
            last = file
            path = ROOT / file
            assert path.is_file(), f"docs/security.md names {file}, which does not exist"
            if name:
                assert name in _tests_in(path), f"docs/security.md names {file}::{name}, which does not exist"
