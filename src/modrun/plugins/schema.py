"""Typed plugin schemas: what a plugin's functions take and return.

A schema is JSON (format in docs/schema-format.md) found in a sidecar file next
to the wasm or in the wasm's ``modrun.schema`` custom section. Types are written
as GraphQL type strings (``String!``, ``[Person!]``); objects are declared under
``types``. A function without an entry takes and returns a String.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modrun.errors import SchemaError

SECTION_NAME = "modrun.schema"
SCALARS = frozenset(
    {"String", "Int", "Float", "Boolean", "ID", "JSON", "Int64", "UInt64", "UInt", "Bytes", "Timestamp"}
)
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
INPUT_ENCODINGS = ("json", "text", "bytes", "none")


@dataclass(frozen=True)
class TypeRef:
    """A GraphQL-style type: a name, a list of a type, or a non-null type."""

    name: str | None = None
    list_of: TypeRef | None = None
    non_null: TypeRef | None = None

    @classmethod
    def parse(cls, text: str) -> TypeRef:
        s = text.strip()
        if s.endswith("!"):
            inner = cls.parse(s[:-1])
            if inner.non_null is not None:
                raise ValueError(f"invalid type {text!r}")
            return cls(non_null=inner)
        if s.startswith("[") and s.endswith("]"):
            return cls(list_of=cls.parse(s[1:-1]))
        if not _NAME.match(s):
            raise ValueError(f"invalid type {text!r}")
        return cls(name=s)

    @property
    def required(self) -> bool:
        return self.non_null is not None

    @property
    def base(self) -> str:
        t: TypeRef = self
        while t.name is None:
            t = t.non_null or t.list_of  # type: ignore[assignment]
        return t.name

    def __str__(self) -> str:
        if self.non_null is not None:
            return f"{self.non_null}!"
        if self.list_of is not None:
            return f"[{self.list_of}]"
        return self.name or "?"


STRING = TypeRef(name="String")


@dataclass(frozen=True)
class Param:
    name: str
    type: TypeRef
    description: str = ""


@dataclass(frozen=True)
class ObjectType:
    name: str
    fields: tuple[Param, ...]
    description: str = ""


@dataclass(frozen=True)
class Signature:
    """How a function is called. ``input``: how arguments become input bytes
    (``json`` object of params, ``text``/``bytes`` for a single param passed
    raw, ``none`` for no input). The output is raw text for String, raw bytes
    for Bytes, nothing for no ``returns``, and JSON for anything else."""

    params: tuple[Param, ...]
    returns: TypeRef | None
    description: str = ""
    input: str = "text"
    typed: bool = False
    streams: bool = False  # emits its output in chunks: also a GraphQL subscription
    chat: bool = False  # an OpenAI chat handler: its input is a chat request, its output the answer

    @property
    def output(self) -> str:
        if self.returns is None:
            return "none"
        single = (self.returns.non_null or self.returns).list_of is None  # [String!]! is a list
        if single and self.returns.base == "String":
            return "text"
        if single and self.returns.base == "Bytes":
            return "bytes"
        return "json"

    def render(self, name: str) -> str:
        args = ", ".join(f"{p.name}: {p.type}" for p in self.params)
        return f"{name}({args}): {self.returns if self.returns else 'Void'}"


META_KEYS = ("version", "language", "sdk", "sdk_version", "build_time", "git_repo", "git_commit")


def plugin_meta(raw: object) -> dict[str, str]:
    """What a plugin says of itself (its schema's ``meta``, or a ``modrun.meta``
    custom section): the known keys, as short strings; anything else is ignored."""
    if not isinstance(raw, Mapping):
        return {}
    return {k: str(raw[k])[:200] for k in META_KEYS if isinstance(raw.get(k), str | int | float)}


UNTYPED = Signature(params=(Param("input", STRING),), returns=STRING, input="text")


@dataclass(frozen=True)
class PluginSchema:
    functions: Mapping[str, Signature] = field(default_factory=dict)
    types: Mapping[str, ObjectType] = field(default_factory=dict)
    description: str = ""
    meta: Mapping[str, str] = field(default_factory=dict)  # "meta": version, language, sdk, git...

    def signature(self, function: str) -> Signature:
        return self.functions.get(function, UNTYPED)


EMPTY = PluginSchema()


def _param(owner: str, name: str, spec: Any) -> Param:
    if not _NAME.match(name):
        raise ValueError(f"{owner}: {name!r} is not a valid name")
    if isinstance(spec, str):
        return Param(name, TypeRef.parse(spec))
    if isinstance(spec, Mapping) and isinstance(spec.get("type"), str):
        return Param(name, TypeRef.parse(spec["type"]), str(spec.get("description", "")))
    raise ValueError(f'{owner}.{name}: expected a type string or {{"type": ..., "description": ...}}')


def _params(owner: str, spec: Any) -> tuple[Param, ...]:
    if spec is None:
        return ()
    if isinstance(spec, Mapping):
        return tuple(_param(owner, k, v) for k, v in spec.items())
    if isinstance(spec, list):
        out = []
        for item in spec:
            if not isinstance(item, Mapping) or "name" not in item:
                raise ValueError(f"{owner}: each list entry needs a name and a type")
            out.append(_param(owner, str(item["name"]), item))
        return tuple(out)
    raise ValueError(f"{owner}: expected an object of name -> type")


def _signature(name: str, spec: Any) -> Signature:
    if not isinstance(spec, Mapping):
        raise ValueError(f"functions.{name}: expected an object")
    params = _params(f"functions.{name}.params", spec.get("params"))
    returns_spec = spec.get("returns")
    returns = (
        TypeRef.parse(returns_spec) if isinstance(returns_spec, str) and returns_spec != "Void" else None
    )
    if returns_spec is not None and not isinstance(returns_spec, str):
        raise ValueError(f"functions.{name}.returns: expected a type string")
    default_input = "none" if not params else "json"
    encoding = spec.get("input", default_input)
    if encoding not in INPUT_ENCODINGS:
        raise ValueError(f"functions.{name}.input: must be one of {', '.join(INPUT_ENCODINGS)}")
    if encoding in ("text", "bytes") and len(params) != 1:
        raise ValueError(f"functions.{name}.input: {encoding!r} needs exactly one param")
    if encoding == "none" and params:
        raise ValueError(f"functions.{name}.input: 'none' cannot take params")
    flags = {}
    for flag in ("streams", "chat"):
        value = spec.get(flag, False)
        if not isinstance(value, bool):
            raise ValueError(f"functions.{name}.{flag}: expected true or false")
        flags[flag] = value
    if flags["chat"] and encoding not in ("text", "bytes"):
        raise ValueError(f"functions.{name}.chat: a chat handler takes the chat request as its one raw param")
    description = str(spec.get("description", ""))
    return Signature(
        params,
        returns,
        description,
        encoding,
        typed=True,
        streams=flags["streams"] or flags["chat"],
        chat=flags["chat"],
    )


def parse_schema(data: bytes | str, origin: str) -> PluginSchema:
    """Parse and check a schema document; errors name ``origin`` and the path."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise SchemaError(origin, f"schema is not valid JSON: {exc}") from None
    try:
        if not isinstance(doc, Mapping):
            raise ValueError("top level must be an object")
        version = doc.get("version", 1)
        if version != 1:
            raise ValueError(f"unsupported schema version {version!r} (this modrun reads version 1)")
        types = {}
        for tname, tspec in (doc.get("types") or {}).items():
            if not _NAME.match(tname) or tname in SCALARS:
                raise ValueError(f"types.{tname}: not a usable type name")
            if not isinstance(tspec, Mapping):
                raise ValueError(f"types.{tname}: expected an object with fields")
            fields = _params(f"types.{tname}.fields", tspec.get("fields"))
            if not fields:
                raise ValueError(f"types.{tname}: needs at least one field")
            types[tname] = ObjectType(tname, fields, str(tspec.get("description", "")))
        functions = {n: _signature(n, s) for n, s in (doc.get("functions") or {}).items()}
        known = SCALARS | types.keys()
        for where, ref in _refs(functions, types):
            if ref.base not in known:
                raise ValueError(f"{where}: unknown type {ref.base!r}")
        return PluginSchema(functions, types, str(doc.get("description", "")), plugin_meta(doc.get("meta")))
    except ValueError as exc:
        raise SchemaError(origin, f"invalid schema: {exc}") from None


def _refs(functions: Mapping[str, Signature], types: Mapping[str, ObjectType]):
    for fname, sig in functions.items():
        for p in sig.params:
            yield f"functions.{fname}.params.{p.name}", p.type
        if sig.returns is not None:
            yield f"functions.{fname}.returns", sig.returns
    for tname, t in types.items():
        for f in t.fields:
            yield f"types.{tname}.fields.{f.name}", f.type


# -- checking JSON arguments against a signature (REST input) -----------------

_JSON_CHECKS = {
    "String": lambda v: isinstance(v, str),
    "ID": lambda v: isinstance(v, (str, int)) and not isinstance(v, bool),
    "Int": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31,
    "UInt": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32,
    "Int64": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63,
    "UInt64": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**64,
    "Float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "Boolean": lambda v: isinstance(v, bool),
    "Timestamp": lambda v: isinstance(v, str),
    "Bytes": lambda v: isinstance(v, str),
    "JSON": lambda v: True,
}


def check_value(value: Any, ref: TypeRef, types: Mapping[str, ObjectType], path: str) -> None:
    """Raise ValueError naming ``path`` when ``value`` does not fit ``ref``."""
    if ref.non_null is not None:
        if value is None:
            raise ValueError(f"{path} is required")
        check_value(value, ref.non_null, types, path)
        return
    if value is None:
        return
    if ref.list_of is not None:
        if not isinstance(value, list):
            raise ValueError(f"{path} must be a list")
        for i, item in enumerate(value):
            check_value(item, ref.list_of, types, f"{path}[{i}]")
        return
    assert ref.name is not None
    if ref.name in _JSON_CHECKS:
        if not _JSON_CHECKS[ref.name](value):
            raise ValueError(f"{path} must be {ref.name}")
        return
    check_object(value, types[ref.name].fields, types, path)


def check_object(value: Any, fields: tuple[Param, ...], types: Mapping[str, ObjectType], path: str) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(f"{path or 'input'} must be a JSON object")
    names = {f.name for f in fields}
    unknown = sorted(set(value) - names)
    if unknown:
        raise ValueError(f"unknown field {'.'.join(filter(None, [path, unknown[0]]))}")
    for f in fields:
        check_value(value.get(f.name), f.type, types, ".".join(filter(None, [path, f.name])))
