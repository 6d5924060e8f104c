"""Just enough of the wasm binary format to read custom sections."""

from __future__ import annotations

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


def custom_sections(wasm: bytes) -> dict[str, bytes]:
    """Custom sections by name (the last one wins when a name repeats)."""
    if wasm[:4] != MAGIC:
        raise ValueError("not a WebAssembly binary (bad magic number)")
    sections: dict[str, bytes] = {}
    pos = 8
    while pos < len(wasm):
        section_id = wasm[pos]
        size, pos = _uleb128(wasm, pos + 1)
        end = pos + size
        if end > len(wasm):
            raise ValueError("truncated section")
        if section_id == 0:
            name_len, name_at = _uleb128(wasm, pos)
            name = wasm[name_at : name_at + name_len].decode("utf-8", "replace")
            sections[name] = wasm[name_at + name_len : end]
        pos = end
    return sections


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
