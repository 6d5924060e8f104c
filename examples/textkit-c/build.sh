#!/bin/sh
# Builds build/release.wasm with Debian's clang, lld and wasi-libc
# (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32).
set -eu
cd "$(dirname "$0")"
mkdir -p build
${CC:-clang} --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Wl,--strip-debug \
    -o build/release.wasm src/textkit.c src/extism.c
echo "built $(pwd)/build/release.wasm"
