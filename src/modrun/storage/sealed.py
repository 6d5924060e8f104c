"""Files encrypted at rest with AES-256-GCM, in segments, so a large artifact
is sealed and opened in constant memory and checked as it streams.

Layout: ``MRS1`` + an 8-byte random nonce prefix, then segments of up to
1 MiB of plaintext, each sealed with the nonce ``prefix || segment index (4
bytes)`` and the associated data ``index || last-segment flag``, so segments
cannot be reordered, dropped or the file cut short without the tag failing
(the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár).
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"MRS1"
SEGMENT = 1 << 20
TAG = 16
NAME = "aes-256-gcm"


class SealError(Exception):
    pass


def parse_key(text: str) -> bytes:
    """A 256-bit key written as 64 hex digits or base64."""
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != 32:
        raise SealError("the artifact key must be 32 bytes: 64 hex digits or base64 (openssl rand -hex 32)")
    return key


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _aad(index: int, last: bool) -> bytes:
    return struct.pack(">I?", index, last)


def seal(key: bytes, source: Path, target: Path) -> None:
    cipher = AESGCM(key)
    prefix = os.urandom(8)
    with source.open("rb") as src, target.open("wb") as out:
        out.write(MAGIC + prefix)
        index = 0
        current = src.read(SEGMENT)
        while True:
            following = src.read(SEGMENT)
            last = not following
            out.write(cipher.encrypt(_nonce(prefix, index), current, _aad(index, last)))
            if last:
                return
            current, index = following, index + 1


def open_sealed(key: bytes, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The plaintext of a sealed stream, segment by segment; SealError when it
    was altered, cut short or sealed with another key."""
    cipher = AESGCM(key)
    buffer = bytearray()
    stream = iter(chunks)
    header: bytes | None = None
    index = 0
    ended = False
    while not ended:
        chunk = next(stream, None)
        if chunk is None:
            ended = True
        else:
            buffer += chunk
        if header is None:
            if len(buffer) < 12 and not ended:
                continue
            if bytes(buffer[:4]) != MAGIC or len(buffer) < 12:
                raise SealError("not a sealed file")
            header = bytes(buffer[4:12])
            del buffer[:12]
        size = SEGMENT + TAG
        while len(buffer) > size or (ended and buffer):
            piece = bytes(buffer[:size])
            del buffer[:size]
            last = ended and not buffer
            try:
                yield cipher.decrypt(_nonce(header, index), piece, _aad(index, last))
            except InvalidTag:
                raise SealError(
                    "a sealed segment failed its check (altered, truncated or another key)"
                ) from None
            index += 1
            if last:
                return
    raise SealError("a sealed file ended before its last segment")


VALUE_MAGIC = b"MRV1"


def seal_value(key: bytes, plaintext: bytes, context: bytes) -> bytes:
    """One small value sealed with AES-256-GCM; ``context`` (what it belongs to)
    is bound in as associated data, so a sealed value moved elsewhere fails."""
    nonce = os.urandom(12)
    return VALUE_MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def open_value(key: bytes, sealed: bytes, context: bytes) -> bytes:
    if sealed[:4] != VALUE_MAGIC or len(sealed) < 4 + 12 + TAG:
        raise SealError("not a sealed value")
    try:
        return AESGCM(key).decrypt(sealed[4:16], sealed[16:], context)
    except InvalidTag:
        raise SealError("the value was altered, moved or sealed with another key") from None
