"""The Extism memory kernel (``kernel.wat``) and the layout the host reads.

The offsets below mirror the comment at the top of ``kernel.wat``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from wasmtime import Engine, Module, wat2wasm

ENV_MODULE = "extism:host/env"
USER_MODULE = "extism:host/user"

INPUT_OFFSET = 8
INPUT_LENGTH = 16
OUTPUT_OFFSET = 24
OUTPUT_LENGTH = 32
ERROR_HANDLE = 40
HEAP_TOP = 48
FIRST_HANDLE = 80
BLOCK_CAPACITY = -16
BLOCK_LENGTH = -8


@cache
def kernel_wasm() -> bytes:
    source = resources.files("modrun.wasm").joinpath("kernel.wat").read_text()
    return bytes(wat2wasm(source))


def compile_kernel(engine: Engine) -> Module:
    return Module(engine, kernel_wasm())
