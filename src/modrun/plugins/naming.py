"""GraphQL names for functions, following Modus's rules (reference/modus.md).

* ``getPerson`` -> ``person``, ``listPeople`` -> ``people``: a leading ``get`` or
  ``list`` is stripped when a capital letter follows, then the first letter is
  lower-cased.
* A name starting with a mutation verb (``addPost``, ``deleteUser``...) not
  followed by a lowercase letter becomes a Mutation field, unchanged.
* Names starting with ``_`` are private and never exposed.
"""

from __future__ import annotations

import re

MUTATION_PREFIXES = (
    "mutate",
    "post",
    "patch",
    "put",
    "delete",
    "add",
    "update",
    "insert",
    "upsert",
    "create",
    "edit",
    "save",
    "remove",
    "alter",
    "modify",
    "start",
    "stop",
)
_GRAPHQL_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


def is_private(name: str) -> bool:
    return name.startswith("_")


def is_mutation(name: str) -> bool:
    for prefix in MUTATION_PREFIXES:
        if name.startswith(prefix):
            rest = name[len(prefix) :]
            if not rest or not rest[0].islower():
                return True
    return False


def field_name(name: str) -> str:
    if is_mutation(name):
        return name
    for prefix in ("get", "list"):
        rest = name[len(prefix) :]
        if name.startswith(prefix) and rest and (rest[0].isupper() or rest[0] == "_"):
            name = rest
            break
    return name[0].lower() + name[1:] if name else name


def valid_graphql_name(name: str) -> bool:
    return bool(_GRAPHQL_NAME.match(name)) and not name.startswith("__")


def qualify(plugin: str, field: str) -> str:
    """The GraphQL name a shadowed function is reachable under."""
    ident = re.sub(r"[^0-9A-Za-z_]", "_", plugin)
    if ident[:1].isdigit():
        ident = "_" + ident
    return f"{ident}_{field}"
