"""modrun: WebAssembly functions and AI models served as one API."""

__version__ = "0.1.0"

__all__ = ["Runtime", "__version__"]


def __getattr__(name: str):  # lazy, so `import modrun` stays cheap for the CLI
    if name == "Runtime":
        from modrun.runtime import Runtime

        return Runtime
    raise AttributeError(name)
