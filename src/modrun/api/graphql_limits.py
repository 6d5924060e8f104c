"""What one GraphQL request may ask for, checked before anything runs.

A request is refused (400, a GraphQL error naming the limit) when its
operation nests deeper than ``max_depth``, selects more than ``max_fields``
fields (every alias counts: ``{a: f b: f}`` is two), or calls functions more
than ``max_calls`` times (root fields are function calls). Fragments are
followed (a fragment spread twice counts twice; a fragment cycle is an
error); introspection fields count as fields but not as calls, and
introspection's ``ofType`` links add no depth (GraphiQL's introspection
query passes the defaults). The calls of
one request share one deadline (``--timeout``), so a request cannot run for
``max_calls`` x ``--timeout``.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

DEFAULT_MAX_DEPTH = 12
DEFAULT_MAX_FIELDS = 1000
DEFAULT_MAX_CALLS = 50


@dataclass(frozen=True)
class GraphQLLimits:
    max_depth: int = DEFAULT_MAX_DEPTH
    max_fields: int = DEFAULT_MAX_FIELDS
    max_calls: int = DEFAULT_MAX_CALLS


class TooCostly(Exception):
    pass


class _Count:
    def __init__(self, limits: GraphQLLimits, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.limits = limits
        self.fragments = fragments
        self.fields = 0
        self.calls = 0

    def walk(
        self, selections: SelectionSetNode | None, depth: int, root: bool, path: tuple[str, ...]
    ) -> None:
        if selections is None:
            return
        if depth > self.limits.max_depth:
            raise TooCostly(f"the query nests deeper than {self.limits.max_depth} levels (--graphqlMaxDepth)")
        for node in selections.selections:
            if isinstance(node, FieldNode):
                self.fields += 1
                if self.fields > self.limits.max_fields:
                    raise TooCostly(
                        f"the query selects more than {self.limits.max_fields} fields, aliases included "
                        "(--graphqlMaxFields)"
                    )
                if root and not node.name.value.startswith("__"):
                    self.calls += 1
                    if self.calls > self.limits.max_calls:
                        raise TooCostly(
                            f"the query calls functions more than {self.limits.max_calls} times "
                            "(--graphqlMaxCalls); split it into several requests"
                        )
                # ofType unwraps List/NonNull one link at a time (every introspection client
                # nests it ~8 deep); it is not a list, so it does not multiply the answer
                step = 0 if node.name.value == "ofType" else 1
                self.walk(node.selection_set, depth + step, False, path)
            elif isinstance(node, InlineFragmentNode):
                self.walk(node.selection_set, depth, root, path)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                if name in path:
                    raise TooCostly(f"fragment {name!r} spreads itself")
                fragment = self.fragments.get(name)
                if fragment is not None:
                    self.walk(fragment.selection_set, depth, root, (*path, name))


def check_cost(document: DocumentNode, operation: OperationDefinitionNode, limits: GraphQLLimits) -> int:
    """The number of function calls the operation makes; TooCostly past a limit."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    count = _Count(limits, fragments)
    count.walk(operation.selection_set, 1, True, ())
    return count.calls
