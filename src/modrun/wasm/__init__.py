"""The WebAssembly host: engine, Extism kernel, plugin instances, limits."""
