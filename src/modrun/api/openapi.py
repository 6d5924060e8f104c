"""OpenAPI 3.1 documents: the node's (``GET /openapi.json``) with one operation
per loaded function, typed from its schema, and the orchestrator's.

JSON Schema for plugin types follows ``plugins/schema.py``'s checks: Int is a
32-bit integer, Int64/UInt64 integers in their ranges, Bytes and Timestamp
strings, JSON anything; object types become components named
``<plugin>.<Type>``. A function's request body is what ``POST /functions``
takes (a JSON object of its params, or the raw text or bytes of its one
param), and its response what it answers (text, JSON or bytes; 204 for no
output).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modrun.plugins.catalog import Catalog
from modrun.plugins.plugin import Function
from modrun.plugins.schema import Param, TypeRef
from modrun.version import __version__

ERROR = {"$ref": "#/components/schemas/Error"}
GRAPHQL_RESULT = {
    "type": "object",
    "properties": {
        "data": {},
        "errors": {"type": "array", "items": {"type": "object"}},
        "extensions": {"type": "object"},
    },
}
_SCALARS: dict[str, dict[str, Any]] = {
    "String": {"type": "string"},
    "ID": {"type": ["string", "integer"]},
    "Int": {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
    "UInt": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    "Int64": {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
    "UInt64": {"type": "integer", "minimum": 0, "maximum": 2**64 - 1},
    "Float": {"type": "number"},
    "Boolean": {"type": "boolean"},
    "Timestamp": {"type": "string", "description": "RFC 3339 date-time"},
    "Bytes": {"type": "string", "description": "base64"},
    "JSON": {},
}
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}")
_CONVERTER_SCHEMAS = {"int": {"type": "integer", "minimum": 0}, "path": {"type": "string"}}


@dataclass
class Document:
    """An OpenAPI 3.1 document being built."""

    title: str
    description: str
    paths: dict[str, dict[str, Any]] = field(default_factory=dict)
    schemas: dict[str, Any] = field(
        default_factory=lambda: {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
                "description": "What went wrong, in words; some routes add fields (function, kind, logs).",
            }
        }
    )

    def add(
        self,
        method: str,
        path: str,
        operation_id: str,
        summary: str,
        responses: Mapping[str, Any],
        *,
        tag: str,
        body: Mapping[str, Any] | None = None,
        description: str = "",
        query: Iterable[tuple[str, dict[str, Any], str]] = (),
        security: list[dict[str, list[str]]] | None = None,
    ) -> None:
        """One operation; ``path`` may use Starlette's ``{name:converter}``."""
        template, parameters = _path_template(path)
        parameters += [
            {"name": name, "in": "query", "required": False, "schema": schema, "description": text}
            for name, schema, text in query
        ]
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "summary": summary,
            "tags": [tag],
            "responses": dict(responses),
        }
        if description:
            operation["description"] = description
        if parameters:
            operation["parameters"] = parameters
        if body is not None:
            operation["requestBody"] = dict(body)
        if security is not None:
            operation["security"] = security
        self.paths.setdefault(template, {})[method.lower()] = operation

    def as_dict(self) -> dict[str, Any]:
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": __version__, "description": self.description},
            "paths": self.paths,
            "components": {"schemas": self.schemas},
        }


def _path_template(path: str) -> tuple[str, list[dict[str, Any]]]:
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _CONVERTER_SCHEMAS.get(converter or "", {"type": "string"}),
        }
        for name, converter in _PARAM.findall(path)
    ]
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path), parameters


# -- responses -----------------------------------------------------------------


def json_response(description: str, schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": dict(schema or {})}}}


def error(description: str) -> dict[str, Any]:
    return json_response(description, ERROR)


def typed_body(content_type: str, schema: Mapping[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {content_type: {"schema": dict(schema)}}}


# -- functions -----------------------------------------------------------------


def schema_of(ref: TypeRef, plugin: str, nullable: bool = True) -> dict[str, Any]:
    """JSON Schema of a plugin type (``nullable``: null allowed unless ``!``)."""
    if ref.non_null is not None:
        return schema_of(ref.non_null, plugin, nullable=False)
    if ref.list_of is not None:
        inner: dict[str, Any] = {"type": "array", "items": schema_of(ref.list_of, plugin)}
    elif ref.name in _SCALARS:
        inner = dict(_SCALARS[ref.name])
    else:
        inner = {"$ref": f"#/components/schemas/{component_name(plugin, ref.name or '')}"}
    if not nullable:
        return inner
    if "type" in inner and isinstance(inner["type"], str):
        return {**inner, "type": [inner["type"], "null"]}
    if not inner:
        return inner  # JSON: anything, null included
    return {"anyOf": [inner, {"type": "null"}]}


def component_name(plugin: str, type_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{plugin}.{type_name}")


def object_schema(fields: Iterable[Param], plugin: str, description: str = "") -> dict[str, Any]:
    fields = list(fields)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            f.name: {**schema_of(f.type, plugin), **({"description": f.description} if f.description else {})}
            for f in fields
        },
        "additionalProperties": False,
    }
    required = [f.name for f in fields if f.type.required]
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


BUSY = {"503": error("The node is at capacity; retry after Retry-After seconds")}
CALL_ERRORS = {
    "400": error("The input does not fit the function's params"),
    "404": error("No such function (any more)"),
    "413": error("The input is larger than --maxInput"),
    "422": error("The function reported an error"),
    "500": error("The function trapped"),
    "502": error("What a host function reached (HTTP, a model, a database) failed"),
    **BUSY,
    "504": error("The call ran past --timeout"),
    "507": error("The call ran past --maxMemory"),
}


def add_functions(doc: Document, catalog: Catalog) -> None:
    """``POST /functions/...`` once per loaded function, typed from its schema."""
    for plugin in catalog.plugins.values():
        for type_name, definition in plugin.schema.types.items():
            doc.schemas[component_name(plugin.name, type_name)] = object_schema(
                definition.fields, plugin.name, definition.description
            )
    for fn in catalog.by_key.values():
        described = catalog.describe_function(fn)
        sig = fn.signature
        doc.add(
            "POST",
            described["path"],
            component_name(fn.plugin, fn.name).replace(".", "__"),
            sig.render(fn.name),
            {**_success(fn), **CALL_ERRORS},
            tag=f"plugin {fn.plugin}",
            body=_request(fn),
            description=sig.description,
        )


def _request(fn: Function) -> dict[str, Any] | None:
    sig = fn.signature
    if sig.input == "none":
        return None
    if sig.input == "json":
        return typed_body("application/json", object_schema(sig.params, fn.plugin), required=False)
    content = "application/octet-stream" if sig.input == "bytes" else "text/plain"
    return typed_body(content, {"type": "string"}, required=False)


def _success(fn: Function) -> dict[str, Any]:
    sig = fn.signature
    kind = sig.output
    if kind == "none":
        return {"204": {"description": "Done; the function returns nothing"}}
    if kind == "json":
        assert sig.returns is not None
        return {"200": json_response("The function's result", schema_of(sig.returns, fn.plugin))}
    if kind == "bytes":
        content = {"application/octet-stream": {"schema": {"type": "string"}}}
    elif sig.typed:
        content = {"text/plain": {"schema": {"type": "string"}}}
    else:  # untyped output: text when it is text, else bytes
        content = {
            "text/plain": {"schema": {"type": "string"}},
            "application/octet-stream": {"schema": {"type": "string"}},
        }
    return {"200": {"description": "The function's output", "content": content}}


Endpoint = Callable[[Any], Any]


@dataclass(frozen=True)
class NodeRoute:
    """One method on one path; ``operation_id`` None: served but not an API
    operation (the console's pages and assets, the index, refusals)."""

    methods: tuple[str, ...]
    path: str
    endpoint: Endpoint
    operation_id: str | None = None
    summary: str = ""
    tag: str = ""
    answers: Mapping[str, Any] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    query: Iterable[tuple[str, dict[str, Any], str]] = ()
