#!/usr/bin/env python3
"""Fail when modules import each other in a circle (``make lint``).

Python: every ``import``/``from ... import`` of ``modrun`` modules in ``src/``
(those under ``if TYPE_CHECKING:`` too: a type-only circle is still a circle a
reader has to untangle). TypeScript: relative imports between ``console/src``
files. Prints each circle (a strongly connected component) and exits 1.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_graph(src: Path) -> dict[str, set[str]]:
    modules = {}
    for path in src.rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def typescript_graph(src: Path) -> dict[str, set[str]]:
    files = {p.resolve(): p for p in [*src.rglob("*.ts"), *src.rglob("*.tsx")]}
    graph: dict[str, set[str]] = {str(p.relative_to(src)): set() for p in files.values()}
    pattern = re.compile(r"""(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]""")
    for resolved, path in files.items():
        for spec in pattern.findall(path.read_text()):
            base = (resolved.parent / spec).resolve()
            for candidate in (base, *(base.with_name(base.name + ext) for ext in (".ts", ".tsx"))):
                if candidate in files:
                    graph[str(path.relative_to(src))].add(str(files[candidate].relative_to(src)))
                    break
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    failed = False
    for label, graph in (
        ("src", python_graph(ROOT / "src")),
        ("console/src", typescript_graph(ROOT / "console" / "src")),
    ):
        for circle in circles(graph):
            failed = True
            print(f"import circle in {label}: {' <-> '.join(circle)}", file=sys.stderr)
    if not failed:
        print("no import circles in src/ or console/src/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
