"""AssemblyScript values in a guest's memory, to and from JSON-able Python.

Layouts (AssemblyScript's runtime): every managed object has its class id
at ``ptr - 8`` and its byte size at ``ptr - 4``. A string is UTF-16LE; an
ArrayBuffer raw bytes; a typed array is {buffer, dataStart, byteLength}; an
Array {buffer, dataStart, byteLength, length}; a Map {buckets, bucketsMask,
entries, entriesCapacity, entriesOffset, entriesCount} whose entries are
{key, value, taggedNext} (bit 0 of taggedNext: deleted); a Date {year,
month, day, epochMillis@16}; a class its fields in order, each aligned to its
size. The host allocates through the guest's ``__new`` and keeps what it
made pinned (``__pin``) until the call is over.

JSON shapes (as Modus answers): integers and floats as numbers, strings,
byte buffers as base64, typed arrays and arrays as lists, maps as objects
(a list of ``{key, value}``, as Modus gives them), dates as RFC 3339 UTC strings, classes as objects.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from modrun.plugins.modus.types import ARRAYBUFFER_ID, STRING_ID, STRUCT_FORMATS, AsType, align, parse


class CodecError(ValueError):
    """A value that does not fit its declared type (the message names where)."""


class Memory(Protocol):
    def read(self, address: int, length: int) -> bytes: ...
    def write(self, address: int, data: bytes) -> None: ...
    def new(self, size: int, class_id: int) -> int: ...


class ClassInfo(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def fields(self) -> tuple[tuple[str, str], ...]:  # (name, AssemblyScript type) in declaration order
        ...


_U32 = struct.Struct("<I")
_MAX_ITEMS = 1 << 24


def layout(fields: tuple[tuple[str, str], ...]) -> tuple[list[tuple[str, AsType, int]], int]:
    """Each field's type and offset, and the class's size."""
    offset, out = 0, []
    for name, type_name in fields:
        t = parse(type_name)
        offset = align(offset, t.size)
        out.append((name, t, offset))
        offset += t.size
    return out, offset


class Codec:
    def __init__(self, memory: Memory, classes: Mapping[str, ClassInfo]) -> None:
        self.memory = memory
        self.classes = classes

    # -- reading ---------------------------------------------------------------

    def _u32(self, address: int) -> int:
        return _U32.unpack(self.memory.read(address, 4))[0]

    def _size(self, ptr: int) -> int:
        return self._u32(ptr - 4)

    def read(self, t: AsType, raw: Any, where: str = "result") -> Any:
        """The value of type ``t`` held in ``raw`` (a wasm value: the number,
        or the object's address)."""
        if t.kind == "primitive":
            return _primitive_out(t, raw)
        ptr = int(raw) & 0xFFFFFFFF
        if ptr == 0:
            if t.nullable or t.kind == "void":
                return None
            raise CodecError(f"{where}: a null pointer for non-nullable {t.name}")
        return self._object(t, ptr, where)

    def _object(self, t: AsType, ptr: int, where: str) -> Any:
        mem = self.memory
        if t.kind == "string":
            return mem.read(ptr, self._size(ptr)).decode("utf-16-le", "replace")
        if t.kind == "arraybuffer":
            return base64.b64encode(mem.read(ptr, self._size(ptr))).decode()
        if t.kind == "typedarray":
            data, length = self._u32(ptr + 4), self._u32(ptr + 8)
            element = t.args[0]
            raw = mem.read(data, length)
            if element.name == "u8":
                return base64.b64encode(raw).decode()
            count = length // element.size
            return [
                _primitive_out(element, v)
                for v in struct.unpack(f"<{count}{STRUCT_FORMATS[element.name]}", raw)
            ]
        if t.kind == "array":
            data, length = self._u32(ptr + 4), self._u32(ptr + 12)
            element = t.args[0]
            return [self._element(element, data + i * element.size, f"{where}[{i}]") for i in range(length)]
        if t.kind == "map":
            return self._map(t, ptr, where)
        if t.kind == "date":
            (millis,) = struct.unpack("<q", mem.read(ptr + 16, 8))
            return (
                datetime.fromtimestamp(millis / 1000, UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z")
            )
        cls = self._class(t, where)
        fields, _size = layout(cls.fields)
        return {name: self._element(ft, ptr + offset, f"{where}.{name}") for name, ft, offset in fields}

    def _element(self, t: AsType, address: int, where: str) -> Any:
        if t.kind == "primitive":
            (value,) = struct.unpack(f"<{STRUCT_FORMATS[t.name]}", self.memory.read(address, t.size))
            return _primitive_out(t, value)
        return self.read(t, self._u32(address), where)

    def _map(self, t: AsType, ptr: int, where: str) -> list[dict]:
        key_t, value_t = t.args
        entries, used = self._u32(ptr + 8), self._u32(ptr + 16)
        value_at, next_at, size = _entry_layout(key_t, value_t)
        out = []
        for i in range(min(used, _MAX_ITEMS)):
            entry = entries + i * size
            if self._u32(entry + next_at) & 1:
                continue  # deleted
            key = self._element(key_t, entry, f"{where} key")
            out.append({"key": key, "value": self._element(value_t, entry + value_at, f"{where}[{key!r}]")})
        return out

    def _class(self, t: AsType, where: str) -> ClassInfo:
        cls = self.classes.get(t.name)
        if cls is None:
            raise CodecError(f"{where}: the plugin's metadata does not describe {t.name}")
        return cls

    # -- writing -----------------------------------------------------------------

    def write(self, t: AsType, value: Any, where: str) -> Any:
        """``value`` as a wasm value of type ``t``: the number, or the address
        of a new (pinned) object."""
        if t.kind == "primitive":
            return _primitive_in(t, value, where)
        if value is None:
            if t.nullable:
                return 0
            raise CodecError(f"{where} is required")
        if t.kind == "string":
            if not isinstance(value, str):
                raise CodecError(f"{where} must be a string")
            return self._bytes(value.encode("utf-16-le", "surrogatepass"), STRING_ID)
        if t.kind == "arraybuffer":
            return self._bytes(_b64(value, where), ARRAYBUFFER_ID)
        if t.kind == "typedarray":
            element = t.args[0]
            if element.name == "u8" and isinstance(value, str):
                data = _b64(value, where)
            else:
                items = _list(value, where)
                data = struct.pack(
                    f"<{len(items)}{STRUCT_FORMATS[element.name]}",
                    *(_primitive_in(element, v, f"{where}[{i}]") for i, v in enumerate(items)),
                )
            buffer = self._bytes(data, ARRAYBUFFER_ID)
            return self._record(t, struct.pack("<III", buffer, buffer, len(data)), where)
        if t.kind == "array":
            element = t.args[0]
            items = _list(value, where)
            data = b"".join(self._packed(element, v, f"{where}[{i}]") for i, v in enumerate(items))
            buffer = self._bytes(data, ARRAYBUFFER_ID)
            return self._record(t, struct.pack("<IIII", buffer, buffer, len(data), len(items)), where)
        if t.kind == "map":
            return self._write_map(t, value, where)
        if t.kind == "date":
            millis = _millis(value, where)
            when = datetime.fromtimestamp(millis / 1000, UTC)
            return self._record(t, struct.pack("<iiiiq", when.year, when.month, when.day, 0, millis), where)
        cls = self._class(t, where)
        if not isinstance(value, Mapping):
            raise CodecError(f"{where} must be an object")
        fields, size = layout(cls.fields)
        unknown = sorted(set(value) - {name for name, _t, _o in fields})
        if unknown:
            raise CodecError(f"unknown field {where}.{unknown[0]}")
        body = bytearray(size)
        for name, ft, offset in fields:
            packed = self._packed(ft, value.get(name), f"{where}.{name}")
            body[offset : offset + len(packed)] = packed
        ptr = self.memory.new(size, cls.id)
        self.memory.write(ptr, bytes(body))
        return ptr

    def _packed(self, t: AsType, value: Any, where: str) -> bytes:
        """``value`` as a field or element: the primitive's bytes, or an address."""
        raw = self.write(t, value, where)
        return struct.pack(f"<{STRUCT_FORMATS[t.name]}" if t.kind == "primitive" else "<I", raw)

    def _bytes(self, data: bytes, class_id: int) -> int:
        ptr = self.memory.new(len(data), class_id)
        if data:
            self.memory.write(ptr, data)
        return ptr

    def _record(self, t: AsType, body: bytes, where: str) -> int:
        """A runtime class (array, typed array, map, date) with the given body;
        its class id comes from the plugin's metadata."""
        ptr = self.memory.new(len(body), self._class(t, where).id)
        self.memory.write(ptr, body)
        return ptr

    def _write_map(self, t: AsType, value: Any, where: str) -> int:
        key_t, value_t = t.args
        items = _pairs(value, where)
        capacity = 4
        while capacity < len(items):
            capacity <<= 1
        value_at, next_at, entry_size = _entry_layout(key_t, value_t)
        buckets = self._bytes(bytes(4 * capacity), ARRAYBUFFER_ID)
        entries = self._bytes(bytes(entry_size * capacity), ARRAYBUFFER_ID)
        heads = [0] * capacity
        for i, (raw_key, item) in enumerate(items):
            key = _number_key(key_t, raw_key, where)
            entry = entries + i * entry_size
            key_bytes = self._packed(key_t, key, f"{where} key {raw_key!r}")
            self.memory.write(entry, key_bytes)
            self.memory.write(entry + value_at, self._packed(value_t, item, f"{where}[{raw_key!r}]"))
            bucket = self._hash(key_t, key, key_bytes) & (capacity - 1)
            self.memory.write(entry + next_at, _U32.pack(heads[bucket]))
            heads[bucket] = entry
        self.memory.write(buckets, struct.pack(f"<{capacity}I", *heads))
        body = struct.pack("<IIIiii", buckets, capacity - 1, entries, capacity, len(items), len(items))
        return self._record(t, body, where)

    def _hash(self, key_t: AsType, key: Any, packed: bytes) -> int:
        if key_t.kind == "string":
            return hash_string(key.encode("utf-16-le", "surrogatepass"))
        if key_t.kind == "primitive":
            if key_t.size == 8:
                return hash64(struct.unpack("<Q", packed)[0])
            return hash32(
                struct.unpack("<I", packed.ljust(4, b"\0"))[0] & ((1 << (8 * key_t.size)) - 1), key_t.size
            )
        return hash32(struct.unpack("<I", packed)[0], 4)  # a reference key: its address


def _entry_layout(key_t: AsType, value_t: AsType) -> tuple[int, int, int]:
    """A map entry's value offset, taggedNext offset and aligned size."""
    value_at = align(key_t.size, value_t.size)
    next_at = align(value_at + value_t.size, 4)
    entry_align = max(key_t.size, value_t.size, 4) - 1
    return value_at, next_at, (next_at + 4 + entry_align) & ~entry_align


# -- AssemblyScript's hashing of map keys (xxHash32, seed 0) ------------------

_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_M = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M


def _avalanche(h: int) -> int:
    h ^= h >> 15
    h = (h * _P2) & _M
    h ^= h >> 13
    h = (h * _P3) & _M
    return h ^ (h >> 16)


def hash32(key: int, length: int = 4) -> int:
    h = (_P5 + length + key * _P3) & _M
    return _avalanche((_rotl(h, 17) * _P4) & _M)


def hash64(key: int) -> int:
    h = (_P5 + 8 + (key & _M) * _P3) & _M
    h = (_rotl(h, 17) * _P4) & _M
    h = (h + (key >> 32) * _P3) & _M
    return _avalanche((_rotl(h, 17) * _P4) & _M)


def hash_string(data: bytes) -> int:
    """The hash of a string's UTF-16LE bytes."""
    n, pos = len(data), 0
    h = n
    if n >= 16:
        s = [(_P1 + _P2) & _M, _P2, 0, (-_P1) & _M]
        while pos <= n - 16:
            for lane in range(4):
                (word,) = _U32.unpack_from(data, pos + 4 * lane)
                s[lane] = (_rotl((s[lane] + word * _P2) & _M, 13) * _P1) & _M
            pos += 16
        h = (h + _rotl(s[0], 1) + _rotl(s[1], 7) + _rotl(s[2], 12) + _rotl(s[3], 18)) & _M
    else:
        h = (h + _P5) & _M
    while pos <= n - 4:
        (word,) = _U32.unpack_from(data, pos)
        h = (_rotl((h + word * _P3) & _M, 17) * _P4) & _M
        pos += 4
    while pos < n:
        h = (_rotl((h + data[pos] * _P5) & _M, 11) * _P1) & _M
        pos += 1
    return _avalanche(h)


# -- primitives and JSON shapes -------------------------------------------------

_INT_RANGES = {
    "i8": (-(1 << 7), 1 << 7),
    "u8": (0, 1 << 8),
    "i16": (-(1 << 15), 1 << 15),
    "u16": (0, 1 << 16),
    "i32": (-(1 << 31), 1 << 31),
    "u32": (0, 1 << 32),
    "isize": (-(1 << 31), 1 << 31),
    "usize": (0, 1 << 32),
    "i64": (-(1 << 63), 1 << 63),
    "u64": (0, 1 << 64),
}


def _primitive_out(t: AsType, raw: Any) -> Any:
    """A wasm value (wasm has only signed i32/i64) as the type's Python value."""
    if t.name == "bool":
        return bool(raw)
    if t.name in ("f32", "f64"):
        value = float(raw)
        return value if math.isfinite(value) else None
    bits = 64 if t.size == 8 else 32
    value = int(raw) & ((1 << bits) - 1)
    low, high = _INT_RANGES[t.name]
    if t.size < 4:  # narrow integers travel in an i32
        value &= (1 << (8 * t.size)) - 1
    if low < 0 and value >= high:
        value -= 1 << (8 * t.size if t.size < 4 else bits)
    return value


def _primitive_in(t: AsType, value: Any, where: str) -> Any:
    if value is None:
        raise CodecError(f"{where} is required")
    if t.name == "bool":
        if not isinstance(value, bool):
            raise CodecError(f"{where} must be a boolean")
        return int(value)
    if t.name in ("f32", "f64"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CodecError(f"{where} must be a number")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"{where} must be an integer")
    low, high = _INT_RANGES[t.name]
    if not low <= value < high:
        raise CodecError(f"{where} is out of range for {t.name}")
    return value


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise CodecError(f"{where} must be a list")
    if len(value) > _MAX_ITEMS:
        raise CodecError(f"{where} has too many items")
    return value


def _b64(value: Any, where: str) -> bytes:
    """Bytes as the host hands them, or base64 text as JSON callers send them."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if not isinstance(value, str):
        raise CodecError(f"{where} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise CodecError(f"{where} is not valid base64") from None


def _millis(value: Any, where: str) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise CodecError(f"{where} must be an RFC 3339 time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return int(when.timestamp() * 1000)
    raise CodecError(f"{where} must be an RFC 3339 time")


def _pairs(value: Any, where: str) -> list[tuple[Any, Any]]:
    """A map given as Modus gives it (a list of ``{"key", "value"}``) or as a
    JSON object (string keys)."""
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, list) and all(isinstance(p, Mapping) and set(p) <= {"key", "value"} for p in value):
        return [(p.get("key"), p.get("value")) for p in value]
    raise CodecError(f"{where} must be a list of {{key, value}} pairs")


def _number_key(t: AsType, key: Any, where: str) -> Any:
    """A JSON object's key (always a string) for a map keyed by numbers."""
    if t.kind != "primitive" or not isinstance(key, str):
        return key
    try:
        if t.name == "bool":
            return {"true": True, "false": False}[key]
        return float(key) if t.name in ("f32", "f64") else int(key)
    except (KeyError, ValueError):
        raise CodecError(f"{where}: key {key!r} is not a {t.name}") from None
