"""Reading a GraphQL request's document the one way every transport does
(POST, GET, server-sent events, WebSocket): parsed, cost-checked, validated."""

from __future__ import annotations

from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse, validate
from graphql.language import OperationDefinitionNode
from graphql.utilities import get_operation_ast

from modrun.api.graphql_limits import GraphQLLimits, TooCostly, check_cost


class Refused(Exception):
    """The document cannot run; ``errors`` are GraphQL-formatted."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0].get("message", ""))
        self.errors = errors


def check_document(
    schema: GraphQLSchema, query: str, operation_name: str | None, limits: GraphQLLimits
) -> tuple[DocumentNode, OperationDefinitionNode]:
    """The document and the operation to run, or ``Refused``."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise Refused([dict(exc.formatted)]) from None
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        raise Refused([{"message": "no operation to run: name one with operationName"}])
    try:
        check_cost(document, operation, limits)
    except TooCostly as exc:
        raise Refused([{"message": str(exc), "extensions": {"kind": "QueryTooCostly"}}]) from None
    problems = validate(schema, document)
    if problems:
        raise Refused([dict(e.formatted) for e in problems])
    return document, operation
