"""Which root fields a GraphQL request selects: what the gateway routes by and
what a node's guard checks (each root field runs one function)."""

from __future__ import annotations

import json

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    get_operation_ast,
    parse,
)

from modrun.http.asgi import GRAPHQL_TYPE


class BadGraphQL(Exception):
    pass


def root_fields(body: bytes, content_type: str = "application/json") -> frozenset[str]:
    """``operation.field`` of every root field the request's operation selects
    (fragments followed, introspection fields left out), read as the node reads
    a POST body: the query itself for ``application/graphql``, else JSON."""
    if content_type == GRAPHQL_TYPE:
        params: dict = {"query": body.decode("utf-8", "replace")}
    else:
        try:
            given = json.loads(body or b"null")
        except ValueError:
            raise BadGraphQL("the body must be JSON: {query, variables, operationName}") from None
        params = given if isinstance(given, dict) else {}
    query = params.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadGraphQL('missing "query"')
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise BadGraphQL(exc.message) from None
    operation = get_operation_ast(document, params.get("operationName") or None)
    if operation is None:
        raise BadGraphQL("no operation to run (name it with operationName)")
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    kind = operation.operation.value
    found: set[str] = set()
    pending = list(operation.selection_set.selections)
    seen: set[str] = set()
    while pending:
        node = pending.pop()
        if isinstance(node, FieldNode):
            if not node.name.value.startswith("__"):
                found.add(f"{kind}.{node.name.value}")
        elif isinstance(node, InlineFragmentNode):
            pending.extend(node.selection_set.selections)
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
            seen.add(node.name.value)
            fragment = fragments.get(node.name.value)
            if fragment is not None:
                pending.extend(fragment.selection_set.selections)
    return frozenset(found)
