"""GraphQL: a schema built at run time from every loaded plugin.

Field names follow ``modrun.plugins.naming``; argument and result types come
from plugin schemas (untyped functions are ``name(input: String): String``).
Object types a plugin declares are shared by name across plugins when their
definitions are identical and qualified (``<plugin>_<Type>``) when they differ.
Each response carries ``extensions.invocations.<field>`` with the call's
execution id, plugin, function, duration and log lines.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    ValueNode,
    value_from_ast_untyped,
)

from modrun.errors import CallFailed
from modrun.plugins import naming
from modrun.plugins.catalog import Catalog
from modrun.plugins.plugin import Function
from modrun.plugins.schema import ObjectType, Signature, TypeRef

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


def _int_scalar(name: str, low: int, high: int, description: str) -> GraphQLScalarType:
    def coerce(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise GraphQLError(f"{name} cannot represent {value!r}")
        return value

    def literal(node: ValueNode, _variables: Any = None) -> int:
        return coerce(int(value_from_ast_untyped(node)))

    return GraphQLScalarType(
        name, serialize=coerce, parse_value=coerce, parse_literal=literal, description=description
    )


def _passthrough(name: str, description: str) -> GraphQLScalarType:
    return GraphQLScalarType(
        name,
        serialize=lambda v: v,
        parse_value=lambda v: v,
        parse_literal=lambda node, _vars=None: value_from_ast_untyped(node, _vars),
        description=description,
    )


SCALARS: dict[str, GraphQLScalarType] = {
    "String": GraphQLString,
    "Int": GraphQLInt,
    "Float": GraphQLFloat,
    "Boolean": GraphQLBoolean,
    "ID": GraphQLID,
    "Int64": _int_scalar("Int64", -(2**63), 2**63 - 1, "Signed 64-bit integer"),
    "UInt64": _int_scalar("UInt64", 0, 2**64 - 1, "Unsigned 64-bit integer"),
    "UInt": _int_scalar("UInt", 0, 2**32 - 1, "Unsigned 32-bit integer"),
    "JSON": _passthrough("JSON", "Any JSON value"),
    "Bytes": _passthrough("Bytes", "Binary data, base64-encoded"),
    "Timestamp": _passthrough("Timestamp", "An RFC 3339 timestamp"),
}
VOID = GraphQLScalarType("Void", serialize=lambda _v: None, description="No value")


class _TypeBuilder:
    """Object and input types for every plugin, with per-plugin name mapping."""

    def __init__(self, catalog: Catalog) -> None:
        self.objects: dict[str, GraphQLObjectType] = {}
        self.inputs: dict[str, GraphQLInputObjectType] = {}
        self.definitions: dict[str, ObjectType] = {}
        self.renames: dict[tuple[str, str], str] = {}
        for plugin in catalog.plugins.values():
            for name, definition in plugin.schema.types.items():
                final = name
                if self.definitions.get(name, definition) != definition:
                    final = naming.qualify(plugin.name, name)
                    log.warning(
                        "GraphQL type %s of plugin %s differs from another plugin's; exposed as %s",
                        name,
                        plugin.name,
                        final,
                    )
                self.definitions[final] = definition
                self.renames[(plugin.name, name)] = final

    def output(self, ref: TypeRef, plugin: str) -> Any:
        if ref.non_null is not None:
            return GraphQLNonNull(self.output(ref.non_null, plugin))
        if ref.list_of is not None:
            return GraphQLList(self.output(ref.list_of, plugin))
        assert ref.name is not None
        if ref.name in SCALARS:
            return SCALARS[ref.name]
        final = self.renames[(plugin, ref.name)]
        if final not in self.objects:
            definition = self.definitions[final]
            self.objects[final] = GraphQLObjectType(
                final,
                lambda d=definition: {
                    f.name: GraphQLField(self.output(f.type, plugin), description=f.description or None)
                    for f in d.fields
                },
                description=definition.description or None,
            )
        return self.objects[final]

    def input(self, ref: TypeRef, plugin: str) -> Any:
        if ref.non_null is not None:
            return GraphQLNonNull(self.input(ref.non_null, plugin))
        if ref.list_of is not None:
            return GraphQLList(self.input(ref.list_of, plugin))
        assert ref.name is not None
        if ref.name in SCALARS:
            return SCALARS[ref.name]
        final = self.renames[(plugin, ref.name)] + "Input"
        if final not in self.inputs:
            definition = self.definitions[final[: -len("Input")]]
            self.inputs[final] = GraphQLInputObjectType(
                final,
                lambda d=definition: {
                    f.name: GraphQLInputField(self.input(f.type, plugin), description=f.description or None)
                    for f in d.fields
                },
                description=definition.description or None,
            )
        return self.inputs[final]


def encode_args(sig: Signature, args: dict[str, Any]) -> bytes:
    if sig.input == "json":
        return json.dumps(args, separators=(",", ":")).encode()
    if sig.input == "none":
        return b""
    value = args.get(sig.params[0].name)
    if value is None:
        return b""
    if sig.input == "bytes":
        return base64.b64decode(value)
    return str(value).encode()


def decode_output(sig: Signature, output: bytes) -> Any:
    kind = sig.output
    if kind == "text":
        return output.decode("utf-8", "replace")
    if kind == "bytes":
        return base64.b64encode(output).decode()
    if kind == "none":
        return None
    try:
        return json.loads(output)
    except ValueError as exc:
        raise GraphQLError(f"function returned invalid JSON: {exc}") from None


def _resolver(fn: Function) -> Callable[..., Any]:
    async def resolve(_root: Any, info: Any, **args: Any) -> Any:
        ctx = info.context
        plugin = ctx["catalog"].plugins[fn.plugin]
        data = encode_args(fn.signature, args)
        record: dict[str, Any] = {"executionId": str(uuid.uuid4()), "plugin": fn.plugin, "function": fn.name}
        ctx["invocations"][str(info.path.key)] = record
        try:
            result = await ctx["node"].invoker.acall(plugin, fn, data)
        except CallFailed as exc:
            record["logs"] = [line.as_dict() for line in exc.logs]
            raise GraphQLError(
                exc.message,
                extensions={
                    "kind": type(exc).__name__,
                    "plugin": fn.plugin,
                    "function": fn.name,
                },
            ) from None
        record["durationMs"] = round(result.duration * 1000, 3)
        record["logs"] = [line.as_dict() for line in result.logs]
        return decode_output(fn.signature, result.output)

    return resolve


def _field(fn: Function, types: _TypeBuilder) -> GraphQLField:
    sig = fn.signature
    returns = types.output(sig.returns, fn.plugin) if sig.returns is not None else VOID
    args = {
        p.name: GraphQLArgument(types.input(p.type, fn.plugin), description=p.description or None)
        for p in sig.params
    }
    description = sig.description or None
    return GraphQLField(returns, args=args, resolve=_resolver(fn), description=description)


def build_schema(catalog: Catalog) -> GraphQLSchema:
    types = _TypeBuilder(catalog)
    queries = {name: _field(fn, types) for name, fn in sorted(catalog.queries.items())}
    if not queries:
        queries["_empty"] = GraphQLField(GraphQLBoolean, description="No plugin exposes a query yet")
    mutations = {name: _field(fn, types) for name, fn in sorted(catalog.mutations.items())}
    return GraphQLSchema(
        query=GraphQLObjectType("Query", queries),
        mutation=GraphQLObjectType("Mutation", mutations) if mutations else None,
    )


def schema_for(catalog: Catalog) -> GraphQLSchema:
    """The catalog's schema, built once per catalog snapshot."""
    schema = catalog.graphql_schema
    if schema is None:
        schema = catalog.graphql_schema = build_schema(catalog)
    return schema  # type: ignore[return-value]
