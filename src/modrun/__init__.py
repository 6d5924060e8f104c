"""modrun: WebAssembly functions and AI models served as one API."""

from modrun.version import __version__

__all__ = ["Runtime", "__version__"]


def __getattr__(name: str):  # lazy, so `import modrun` stays cheap for the CLI
    if name == "Runtime":
        from modrun.runtime import Runtime

        return Runtime
    raise AttributeError(name)
