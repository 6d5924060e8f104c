"""GraphQL: a schema built at run time from every loaded plugin.

Field names follow ``modrun.plugins.naming``; argument and result types come
from plugin schemas (untyped functions are ``name(input: String): String``).
Object types a plugin declares are shared by name across plugins when their
definitions are identical and qualified (``<plugin>_<Type>``) when they differ.
Each response carries ``extensions.invocations.<field>`` with the call's
execution id, plugin, function, duration and log lines.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

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

from modrun.api.rest import log_dicts
from modrun.errors import CallFailed
from modrun.plugins import naming
from modrun.plugins.catalog import Catalog
from modrun.plugins.plugin import Function
from modrun.plugins.schema import ObjectType, Signature, TypeRef
from modrun.redact import REDACTOR

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


def _same(value: Any) -> Any:
    return value


def _literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    return value_from_ast_untyped(node, variables)


def _passthrough(name: str, description: str) -> GraphQLScalarType:
    return GraphQLScalarType(
        name,
        serialize=_same,
        parse_value=_same,
        parse_literal=_literal,
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
    """Object and input types for every plugin, with per-plugin name mapping.

    A type name declared by several plugins is shared when every declaration
    is the same *after* resolving the types it refers to; otherwise the later
    plugins' versions are qualified (``<plugin>_<Type>``). Qualifying one type
    can make declarations that refer to it differ too, so names are settled by
    iterating to a fixpoint (a name only ever goes from plain to qualified).
    """

    def __init__(self, catalog: Catalog) -> None:
        self.objects: dict[str, GraphQLObjectType] = {}
        self.inputs: dict[str, GraphQLInputObjectType] = {}
        self.renames: dict[tuple[str, str], str] = {}
        declared = [
            (plugin.name, name, definition)
            for plugin in catalog.plugins.values()
            for name, definition in plugin.schema.types.items()
        ]
        for plugin, name, _ in declared:
            self.renames[(plugin, name)] = name
        while True:
            self.owners: dict[str, tuple[str, ObjectType, tuple]] = {}
            changed = False
            for plugin, name, definition in declared:
                final = self.renames[(plugin, name)]
                shape = self._resolved_shape(definition, plugin)
                owner = self.owners.setdefault(final, (plugin, definition, shape))
                if owner[2] != shape and final == name:
                    self.renames[(plugin, name)] = naming.qualify(plugin, name)
                    changed = True
            if not changed:
                break
        for (plugin, name), final in self.renames.items():
            if final != name:
                log.warning(
                    "GraphQL type %s of plugin %s differs from another plugin's; exposed as %s",
                    name,
                    plugin,
                    final,
                )

    def _resolved_shape(self, definition: ObjectType, plugin: str) -> tuple:
        def resolve(ref: TypeRef) -> str:
            text = str(ref)
            base = ref.base
            return text if base in SCALARS else text.replace(base, self.renames[(plugin, base)], 1)

        return tuple((f.name, resolve(f.type)) for f in definition.fields)

    def _wrap(self, ref: TypeRef, leaf: Callable[[str], Any]) -> Any:
        """``ref`` as a GraphQL type, with named types turned into ``leaf(name)``."""
        if ref.non_null is not None:
            return GraphQLNonNull(self._wrap(ref.non_null, leaf))
        if ref.list_of is not None:
            return GraphQLList(self._wrap(ref.list_of, leaf))
        assert ref.name is not None
        return SCALARS[ref.name] if ref.name in SCALARS else leaf(ref.name)

    def output(self, ref: TypeRef, plugin: str) -> Any:
        return self._wrap(ref, lambda name: self._object(self.renames[(plugin, name)], False))

    def input(self, ref: TypeRef, plugin: str) -> Any:
        return self._wrap(ref, lambda name: self._object(self.renames[(plugin, name)], True))

    def _object(self, final: str, as_input: bool) -> Any:
        """The object type (or its ``<Name>Input`` twin), built once, fields lazily,
        in the context of the plugin that owns the name."""
        table: dict[str, Any] = self.inputs if as_input else self.objects
        name = final + "Input" if as_input else final
        if name not in table:
            plugin, definition, _ = self.owners[final]
            description = definition.description or None
            if as_input:
                table[name] = GraphQLInputObjectType(
                    name,
                    lambda: {
                        f.name: GraphQLInputField(
                            self.input(f.type, plugin), description=f.description or None
                        )
                        for f in definition.fields
                    },
                    description=description,
                )
            else:
                table[name] = GraphQLObjectType(
                    name,
                    lambda: {
                        f.name: GraphQLField(self.output(f.type, plugin), description=f.description or None)
                        for f in definition.fields
                    },
                    description=description,
                )
        return table[name]


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
        remaining = ctx["deadline"] - time.monotonic()
        if remaining <= 0:
            raise GraphQLError(
                "the request's deadline (--timeout) passed before this call",
                extensions={"kind": "Timeout", "plugin": fn.plugin, "function": fn.name},
            )
        await asyncio.sleep(0)  # between the calls of a large request, other requests get their turn
        try:
            result = await ctx["invoker"].acall(plugin, fn, data, remaining)
        except CallFailed as exc:
            record["logs"] = log_dicts(exc.logs)
            raise GraphQLError(
                REDACTOR.scrub(exc.message),
                extensions={
                    "kind": exc.kind,
                    "plugin": fn.plugin,
                    "function": fn.name,
                },
            ) from None
        record["durationMs"] = round(result.duration * 1000, 3)
        record["logs"] = log_dicts(result.logs)
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


def _subscriber(fn: Function) -> Callable[..., Any]:
    """Each chunk the function emits, as text: one subscription event each."""

    async def subscribe(_root: Any, info: Any, **args: Any) -> AsyncIterator[str]:
        ctx = info.context
        plugin = ctx["catalog"].plugins[fn.plugin]
        call = ctx["invoker"].stream(plugin, fn, encode_args(fn.signature, args))
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            async for chunk in call.chunks():
                text = decoder.decode(chunk)
                if text:
                    yield text
        except CallFailed as exc:
            raise GraphQLError(
                REDACTOR.scrub(exc.message),
                extensions={"kind": exc.kind, "plugin": fn.plugin, "function": fn.name},
            ) from None
        finally:
            if not call.done:
                call.cancel()  # the subscriber left: stop the function

    return subscribe


def _subscription_field(fn: Function, types: _TypeBuilder) -> GraphQLField:
    field = _field(fn, types)
    description = f"{fn.signature.description or fn.name}: each chunk of its output as it comes."
    return GraphQLField(
        GraphQLNonNull(GraphQLString),
        args=field.args,
        subscribe=_subscriber(fn),
        resolve=lambda chunk, _info, **_args: chunk,
        description=description,
    )


def build_schema(catalog: Catalog) -> GraphQLSchema:
    types = _TypeBuilder(catalog)
    queries = {name: _field(fn, types) for name, fn in sorted(catalog.queries.items())}
    if not queries:
        queries["_empty"] = GraphQLField(GraphQLBoolean, description="No plugin exposes a query yet")
    mutations = {name: _field(fn, types) for name, fn in sorted(catalog.mutations.items())}
    subscriptions = {
        name: _subscription_field(fn, types) for name, fn in sorted(catalog.subscriptions.items())
    }
    return GraphQLSchema(
        query=GraphQLObjectType("Query", queries),
        mutation=GraphQLObjectType("Mutation", mutations) if mutations else None,
        subscription=GraphQLObjectType("Subscription", subscriptions) if subscriptions else None,
    )


def execution_context(invoker: Any, catalog: Catalog, timeout: float) -> dict[str, Any]:
    """What the resolvers read: one catalog snapshot (the schema's), the
    invoker, the invocations record and the request's deadline."""
    return {
        "invoker": invoker,
        "catalog": catalog,
        "invocations": {},
        "deadline": time.monotonic() + timeout,
    }


def schema_for(catalog: Catalog) -> GraphQLSchema:
    """The catalog's schema, built once per catalog snapshot."""
    schema = catalog.graphql_schema
    if schema is None:
        schema = catalog.graphql_schema = build_schema(catalog)
    return schema  # type: ignore[return-value]
