"""A Modus plugin's ``modus_metadata`` custom section, and the typed schema
modrun serves for it (GraphQL, REST, OpenAPI) with Modus's type mapping."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modrun.plugins.modus.types import AsType, parse
from modrun.plugins.schema import ObjectType, Param, PluginSchema, Signature, TypeRef

SECTION = "modus_metadata"
VERSION_SECTION = "modus_metadata_version"
SUPPORTED_VERSIONS = (1, 2)

_SCALARS = {
    "bool": "Boolean",
    "i8": "Int",
    "i16": "Int",
    "i32": "Int",
    "isize": "Int",
    "u8": "Int",
    "u16": "Int",
    "u32": "UInt",
    "usize": "UInt",
    "i64": "Int64",
    "u64": "UInt64",
    "f32": "Float",
    "f64": "Float",
}


class MetadataError(ValueError):
    pass


@dataclass(frozen=True)
class ModusParam:
    name: str
    type: AsType
    has_default: bool = False
    default: Any = None


@dataclass(frozen=True)
class ModusFunction:
    name: str
    params: tuple[ModusParam, ...]
    result: AsType  # kind "void" when it returns nothing
    description: str = ""

    @property
    def required(self) -> int:
        """How many leading parameters a call must pass (the rest have defaults)."""
        count = len(self.params)
        while count and self.params[count - 1].has_default:
            count -= 1
        return count


@dataclass(frozen=True)
class ModusClass:
    name: str
    id: int
    fields: tuple[tuple[str, str], ...] = ()
    docs: Mapping[str, str] = field(default_factory=dict)  # field -> description
    description: str = ""


@dataclass(frozen=True)
class Metadata:
    plugin: str
    sdk: str
    build_id: str
    exports: Mapping[str, ModusFunction]
    imports: Mapping[str, ModusFunction]  # "module.name" ->
    classes: Mapping[str, ModusClass]
    raw: Mapping[str, Any]

    def schema(self) -> PluginSchema:
        return _Schema(self).build()


def _docs(spec: Any) -> str:
    """A doc comment as the SDK writes it (``{"lines": [...]}``)."""
    docs = spec.get("docs") if isinstance(spec, Mapping) else None
    if isinstance(docs, Mapping):
        lines = docs.get("lines")
        if isinstance(lines, list):
            return "\n".join(str(line) for line in lines).strip()
        return str(docs.get("description") or "")
    return str(docs) if isinstance(docs, str) else ""


def _function(name: str, spec: Any) -> ModusFunction:
    if not isinstance(spec, Mapping):
        raise MetadataError(f"fnExports.{name}: expected an object")
    params = []
    for p in spec.get("parameters") or []:
        if (
            not isinstance(p, Mapping)
            or not isinstance(p.get("name"), str)
            or not isinstance(p.get("type"), str)
        ):
            raise MetadataError(f"{name}: each parameter needs a name and a type")
        params.append(ModusParam(p["name"], parse(p["type"]), "default" in p, p.get("default")))
    results = spec.get("results") or []
    result = parse(results[0]["type"]) if results and isinstance(results[0], Mapping) else parse("void")
    return ModusFunction(name, tuple(params), result, _docs(spec))


def parse_metadata(section: bytes, version: bytes | None) -> Metadata:
    if version is not None and (len(version) != 1 or version[0] not in SUPPORTED_VERSIONS):
        raise MetadataError(f"metadata version {list(version)} is not supported (modrun reads 1 and 2)")
    try:
        doc = json.loads(section)
    except ValueError as exc:
        raise MetadataError(f"the {SECTION} section is not JSON: {exc}") from None
    if not isinstance(doc, Mapping):
        raise MetadataError(f"the {SECTION} section is not a JSON object")
    try:
        classes = {}
        for name, spec in (doc.get("types") or {}).items():
            fields = tuple((str(f["name"]), str(f["type"])) for f in spec.get("fields") or [])
            docs = {str(f["name"]): _docs(f) for f in spec.get("fields") or [] if _docs(f)}
            key = name.replace(" ", "").removesuffix("|null")  # as types.parse names it
            classes[key] = ModusClass(key, int(spec["id"]), fields, docs, _docs(spec))
        exports = {n: _function(n, s) for n, s in (doc.get("fnExports") or {}).items()}
        imports = {n: _function(n, s) for n, s in (doc.get("fnImports") or {}).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise MetadataError(f"malformed {SECTION}: {exc}") from None
    return Metadata(
        str(doc.get("plugin", "")),
        str(doc.get("sdk", "")),
        str(doc.get("buildId", "")),
        exports,
        imports,
        classes,
        doc,
    )


class _Schema:
    """The metadata's functions and classes as modrun's schema."""

    def __init__(self, metadata: Metadata) -> None:
        self.metadata = metadata
        self.types: dict[str, ObjectType] = {}
        self.names: dict[str, str] = {}  # AssemblyScript class -> GraphQL name

    def build(self) -> PluginSchema:
        functions = {}
        for fn in self.metadata.exports.values():
            params = tuple(Param(p.name, self.ref(p.type, optional=p.has_default)) for p in fn.params)
            returns = None if fn.result.kind == "void" else self.ref(fn.result)
            functions[fn.name] = Signature(
                params, returns, fn.description, "json" if params else "none", typed=True
            )
        meta = {"sdk": self.metadata.sdk, "language": "AssemblyScript (Modus)"}
        return PluginSchema(functions, self.types, "", {k: v for k, v in meta.items() if v})

    def ref(self, t: AsType, optional: bool = False) -> TypeRef:
        inner = TypeRef.parse(self.base(t))
        if t.nullable or optional:
            return inner
        return TypeRef(non_null=inner)

    def base(self, t: AsType) -> str:
        if t.kind == "primitive":
            return _SCALARS[t.name]
        if t.kind == "string":
            return "String"
        if t.kind == "arraybuffer":
            return "Bytes"
        if t.kind == "date":
            return "Timestamp"
        if t.kind == "typedarray":
            element = t.args[0]
            return "Bytes" if element.name == "u8" else f"[{_SCALARS[element.name]}!]"
        if t.kind == "array":
            return f"[{self.ref(t.args[0])}]"
        if t.kind == "map":
            return f"[{self.pair(t)}!]"
        return self.object(t)

    def pair(self, t: AsType) -> str:
        """A map as a list of {key, value} objects, named as Modus names them
        (``StringStringPair``, ``StringNullableStringPair``, ``IntFloatListPair``)."""
        key, value = (self.ref(a) for a in t.args)
        name = f"{_pair_part(str(key))}{_pair_part(str(value))}Pair"
        if name not in self.types:
            self.types[name] = ObjectType(name, (Param("key", key), Param("value", value)))
        return name

    def object(self, t: AsType) -> str:
        if t.name in self.names:
            return self.names[t.name]
        cls = self.metadata.classes.get(t.name)
        if cls is None or not cls.fields:
            raise MetadataError(f"the metadata does not describe class {t.name}")
        name = t.name.rsplit("/", 1)[-1]
        while name in self.types:
            name += "_"
        self.names[t.name] = name
        self.types[name] = ObjectType(name, (), cls.description)  # placeholder: fields may refer back
        fields = tuple(Param(n, self.ref(parse(ft)), cls.docs.get(n, "")) for n, ft in cls.fields)
        self.types[name] = ObjectType(name, fields, cls.description)
        return name


def _pair_part(text: str) -> str:
    """A key's or value's part of a pair type's name: ``Nullable`` before what
    may be null, ``List`` after a list of the element's part."""
    if text.endswith("!"):
        text = text[:-1]
    elif text.startswith("["):
        text = "[Nullable" + text[1:]
    else:
        text = "Nullable" + text
    return text[1:].split("!]")[0].removesuffix("]") + "List" if text.startswith("[") else text
