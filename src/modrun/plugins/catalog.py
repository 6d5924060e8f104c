"""An immutable snapshot of every loaded function and how names resolve.

Many plugins are served at once, so two of them may export the same function
name (or names that map to the same GraphQL field). A clash is never silent and
never depends on load order: the plugin whose name sorts first keeps the plain
name; every other one stays reachable under its qualified names
(``/functions/<plugin>/<name>`` and the GraphQL field ``<plugin>_<field>``), and
the clash is listed in ``conflicts`` (logged, and shown by ``GET /functions``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modrun.errors import FunctionNotFound
from modrun.plugins import naming
from modrun.plugins.plugin import Function, Plugin


@dataclass(frozen=True)
class Conflict:
    kind: str  # "function" (REST name) or "graphql" (field name)
    name: str
    winner: tuple[str, str]
    shadowed: tuple[str, str]
    reachable_as: str

    @property
    def message(self) -> str:
        what = "function" if self.kind == "function" else "GraphQL field"
        return (
            f"{what} {self.name!r} of plugin {self.shadowed[0]!r} clashes with plugin "
            f"{self.winner[0]!r}, which keeps the name (its name sorts first); "
            f"{self.shadowed[0]!r}'s is reachable as {self.reachable_as}"
        )

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "winner": {"plugin": self.winner[0], "function": self.winner[1]},
            "shadowed": {"plugin": self.shadowed[0], "function": self.shadowed[1]},
            "reachableAs": self.reachable_as,
            "message": self.message,
        }


class Catalog:
    def __init__(
        self, plugins: Mapping[str, Plugin], load_errors: Mapping[str, str], generation: int = 0
    ) -> None:
        self.plugins = dict(sorted(plugins.items()))
        self.load_errors = dict(sorted(load_errors.items()))
        self.generation = generation
        self.by_name: dict[str, Function] = {}
        self.by_key: dict[tuple[str, str], Function] = {}
        self.queries: dict[str, Function] = {}
        self.mutations: dict[str, Function] = {}
        # streaming functions' fields, also GraphQL subscriptions (a query's name first)
        self.subscriptions: dict[str, Function] = {}
        self.conflicts: list[Conflict] = []
        self.skipped: list[str] = []
        self.graphql_schema: object | None = None  # built lazily by modrun.api.graphql
        self.openapi: bytes | None = None  # built lazily by modrun.api.node_openapi
        self._index()

    def _index(self) -> None:
        for plugin in self.plugins.values():
            for name, fn in sorted(plugin.functions.items()):
                self.by_key[fn.key] = fn
                winner = self.by_name.setdefault(name, fn)
                if winner is not fn:
                    self.conflicts.append(
                        Conflict("function", name, winner.key, fn.key, f"/functions/{fn.plugin}/{name}")
                    )
        for fn in self.by_key.values():
            if not naming.valid_graphql_name(fn.field):
                self.skipped.append(f"{fn.plugin}.{fn.name}: not a valid GraphQL name")
                continue
            table = self.mutations if fn.mutation else self.queries
            winner = table.setdefault(fn.field, fn)
            if winner is not fn:
                alias = naming.qualify(fn.plugin, fn.field)
                table[alias] = fn
                self.conflicts.append(Conflict("graphql", fn.field, winner.key, fn.key, alias))
        for table in (self.queries, self.mutations):
            for field, fn in table.items():
                if fn.signature.streams:
                    self.subscriptions.setdefault(field, fn)

    def resolve(self, name: str) -> tuple[Plugin, Function]:
        """``name`` is a function name or ``plugin/function``."""
        if "/" in name:
            plugin_name, _, fn_name = name.partition("/")
            fn = self.by_key.get((plugin_name, fn_name))
        else:
            fn = self.by_name.get(name)
        if fn is None:
            raise FunctionNotFound(name)
        return self.plugins[fn.plugin], fn

    def describe_function(self, fn: Function) -> dict:
        sig = fn.signature
        shadowed = self.by_name.get(fn.name) is not fn
        return {
            "name": fn.name,
            "plugin": fn.plugin,
            "signature": sig.render(fn.name),
            "description": sig.description,
            "typed": sig.typed,
            "params": [
                {"name": p.name, "type": str(p.type), "description": p.description} for p in sig.params
            ],
            "returns": str(sig.returns) if sig.returns else None,
            "input": sig.input,
            "output": sig.output,
            "streams": sig.streams,
            "chat": sig.chat,
            "graphql": {"operation": "mutation" if fn.mutation else "query", "field": fn.field},
            "path": f"/functions/{fn.plugin}/{fn.name}" if shadowed else f"/functions/{fn.name}",
            "shadowed": shadowed,
        }
