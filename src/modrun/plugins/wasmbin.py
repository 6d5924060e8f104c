"""Just enough of the wasm binary format to read custom sections and exports."""

from __future__ import annotations

from typing import BinaryIO

MAGIC = b"\0asm"


def _uleb128(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated LEB128")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def sections(wasm: bytes):
    """(section id, payload) of every section, in order."""
    if wasm[:4] != MAGIC:
        raise ValueError("not a WebAssembly binary (bad magic number)")
    pos = 8
    while pos < len(wasm):
        section_id = wasm[pos]
        size, pos = _uleb128(wasm, pos + 1)
        end = pos + size
        if end > len(wasm):
            raise ValueError("truncated section")
        yield section_id, wasm[pos:end]
        pos = end


def _name(data: bytes, pos: int) -> tuple[str, int]:
    length, pos = _uleb128(data, pos)
    return data[pos : pos + length].decode("utf-8", "replace"), pos + length


def custom_sections(wasm: bytes) -> dict[str, bytes]:
    """Custom sections by name (the last one wins when a name repeats)."""
    found: dict[str, bytes] = {}
    for section_id, payload in sections(wasm):
        if section_id == 0:
            name, at = _name(payload, 0)
            found[name] = payload[at:]
    return found


EXPORT_SECTION = 7
FUNC_EXPORT = 0


def exported_functions(wasm: bytes) -> list[str]:
    """Names of the functions a module exports."""
    names: list[str] = []
    for section_id, payload in sections(wasm):
        if section_id != EXPORT_SECTION:
            continue
        count, pos = _uleb128(payload, 0)
        for _ in range(count):
            name, pos = _name(payload, pos)
            kind = payload[pos]
            _index, pos = _uleb128(payload, pos + 1)
            if kind == FUNC_EXPORT:
                names.append(name)
    return names


def module_kind(wasm: bytes) -> str:
    """``plugin`` for a module exporting public functions (Extism plugins),
    ``wasi`` for a WASI command (``_start`` and no public function), else ``unknown``."""
    functions = exported_functions(wasm)
    if any(not f.startswith("_") for f in functions):
        return "plugin"
    return "wasi" if "_start" in functions else "unknown"


def read_without_custom_sections(stream: BinaryIO) -> bytes:
    """A module from ``stream`` with its custom sections left out (skipped, not
    read): what validation needs, without holding debug info or padding in memory."""
    header = stream.read(8)
    if header[:4] != MAGIC:
        raise ValueError("not a WebAssembly binary (bad magic number)")
    out = bytearray(header)
    while section_id := stream.read(1):
        size_bytes = bytearray()
        while True:
            byte = stream.read(1)
            if not byte:
                raise ValueError("truncated section size")
            size_bytes += byte
            if not byte[0] & 0x80:
                break
        size, _ = _uleb128(bytes(size_bytes), 0)
        if section_id == b"\0":
            stream.seek(size, 1)
            continue
        payload = stream.read(size)
        if len(payload) != size:
            raise ValueError("truncated section")
        out += section_id + size_bytes + payload
    return bytes(out)


def append_custom_section(wasm: bytes, name: str, payload: bytes) -> bytes:
    """``wasm`` with one more custom section (used by ``modrun schema embed``)."""
    encoded = name.encode()
    body = _leb(len(encoded)) + encoded + payload
    return wasm + b"\0" + _leb(len(body)) + body


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
