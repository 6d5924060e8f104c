"""AssemblyScript type names as the Modus metadata writes them
(``i32``, ``~lib/string/String | null``, ``~lib/array/Array<T>``,
``~lib/map/Map<K,V>``, ``assembly/person/Person``), parsed once into
``AsType``: what kind of value it is, how big in memory, and its type
arguments."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

PRIMITIVE_SIZES = {
    "bool": 1,
    "i8": 1,
    "u8": 1,
    "i16": 2,
    "u16": 2,
    "i32": 4,
    "u32": 4,
    "f32": 4,
    "isize": 4,
    "usize": 4,
    "i64": 8,
    "u64": 8,
    "f64": 8,
}
STRUCT_FORMATS = {
    "bool": "?",
    "i8": "b",
    "u8": "B",
    "i16": "h",
    "u16": "H",
    "i32": "i",
    "u32": "I",
    "isize": "i",
    "usize": "I",
    "i64": "q",
    "u64": "Q",
    "f32": "f",
    "f64": "d",
}
TYPED_ARRAYS = {
    "Int8Array": "i8",
    "Uint8Array": "u8",
    "Uint8ClampedArray": "u8",
    "Int16Array": "i16",
    "Uint16Array": "u16",
    "Int32Array": "i32",
    "Uint32Array": "u32",
    "Int64Array": "i64",
    "Uint64Array": "u64",
    "Float32Array": "f32",
    "Float64Array": "f64",
}
STRING_ID, ARRAYBUFFER_ID = 2, 1  # fixed class ids of AssemblyScript's runtime


@dataclass(frozen=True)
class AsType:
    """``kind``: primitive, void, string, arraybuffer, typedarray, array, map,
    date or class. ``args``: element type (array, typedarray), key and value
    (map). ``name``: the metadata's name without ``| null``."""

    name: str
    kind: str
    nullable: bool = False
    args: tuple[AsType, ...] = ()

    @property
    def size(self) -> int:
        """Bytes it takes as a field or an array element."""
        return PRIMITIVE_SIZES[self.name] if self.kind == "primitive" else 4

    @property
    def is_reference(self) -> bool:
        return self.kind not in ("primitive", "void")


def _split_args(inner: str) -> list[str]:
    depth, start, parts = 0, 0, []
    for i, ch in enumerate(inner):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    return [p.strip() for p in parts]


@lru_cache(maxsize=4096)
def parse(name: str) -> AsType:
    text = name.replace(" ", "")
    nullable = text.endswith("|null")
    if nullable:
        text = text[: -len("|null")]
    if text in PRIMITIVE_SIZES:
        return AsType(text, "primitive", nullable)
    if text == "void":
        return AsType(text, "void")
    if text == "~lib/string/String":
        return AsType(text, "string", nullable)
    if text == "~lib/arraybuffer/ArrayBuffer":
        return AsType(text, "arraybuffer", nullable)
    if text in ("~lib/date/Date", "~lib/wasi_date/wasi_Date"):
        return AsType(text, "date", nullable)
    if text.startswith("~lib/typedarray/"):
        element = TYPED_ARRAYS.get(text.rsplit("/", 1)[1])
        if element is None:
            raise ValueError(f"unsupported typed array {name!r}")
        return AsType(text, "typedarray", nullable, (parse(element),))
    if text.startswith("~lib/array/Array<") and text.endswith(">"):
        return AsType(text, "array", nullable, (parse(text[len("~lib/array/Array<") : -1]),))
    if text.startswith("~lib/map/Map<") and text.endswith(">"):
        args = _split_args(text[len("~lib/map/Map<") : -1])
        if len(args) != 2:
            raise ValueError(f"a map needs a key and a value type: {name!r}")
        return AsType(text, "map", nullable, (parse(args[0]), parse(args[1])))
    return AsType(text, "class", nullable)  # a plugin's or a library's class (the SDK's own, ~lib/...)


def align(offset: int, size: int) -> int:
    return (offset + size - 1) & ~(size - 1)
