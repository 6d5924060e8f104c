"""modrun: WebAssembly functions and AI models served as one API."""

__version__ = "0.1.0"
