"""Finding plugins in an app directory.

``--plugins DIR`` may be:
  * a directory of ``*.wasm`` files (plugin name = file stem);
  * one plugin's source root holding ``build/release.wasm`` and/or
    ``build/debug.wasm`` (plugin name = folder name; the newer of the two wins,
    so rebuilding either one is picked up);
  * a Modus project (``modus.json`` beside ``build/<name>.wasm``: plugin name
    = the wasm's stem, the newest build wins);
  * a parent of several such roots, possibly mixed with ``*.wasm`` files;
  * a single ``.wasm`` file.
A schema sidecar is ``<stem>.schema.json`` next to the wasm, or
``modrun.schema.json`` in a source root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modrun.wasm.limits import Limits

BUILD_OUTPUTS = ("build/release.wasm", "build/debug.wasm")
MODUS_PROJECT = "modus.json"
ROOT_SCHEMA = "modrun.schema.json"
_SKIP_DIRS = {"node_modules", ".git", "build", "__pycache__"}


@dataclass(frozen=True)
class PluginSource:
    name: str
    wasm: Path
    schema: Path | None
    limits: Limits | None = None  # this plugin's own call limits (a deployment's), else the node's
    tenant: bool = False  # a tenant's deployment: none of the node's connections, models or plugin config

    def fingerprint(self) -> tuple:
        """Changes whenever the wasm or its schema file changes."""
        return (file_stamp(self.wasm), file_stamp(self.schema))


def file_stamp(path: Path | None) -> tuple[str, int, int] | None:
    """(path, mtime, size): changes whenever the file is replaced or edited."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path), st.st_mtime_ns, st.st_size)


def _source_root(root: Path) -> PluginSource | None:
    if (root / MODUS_PROJECT).is_file():
        built = sorted((root / "build").glob("*.wasm")) if (root / "build").is_dir() else []
        if built:
            wasm = max(built, key=lambda p: p.stat().st_mtime_ns)
            return PluginSource(wasm.stem, wasm, None)
    candidates = [root / rel for rel in BUILD_OUTPUTS if (root / rel).is_file()]
    if not candidates:
        return None
    wasm = max(candidates, key=lambda p: p.stat().st_mtime_ns)
    return PluginSource(root.name, wasm, _schema_for(wasm) or _existing(root / ROOT_SCHEMA))


def _schema_for(wasm: Path) -> Path | None:
    return _existing(wasm.with_name(wasm.stem + ".schema.json"))


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def discover(path: Path) -> tuple[list[PluginSource], dict[str, str]]:
    """Plugins under ``path`` sorted by name, and problems by plugin name
    (e.g. two sources claiming the same name: the first in sorted path order
    is kept)."""
    problems: dict[str, str] = {}
    if path.is_file():
        return [PluginSource(path.stem, path, _schema_for(path))], problems
    if not path.is_dir():
        return [], {"*": f"plugins path {path} does not exist"}
    root = _source_root(path)
    if root is not None:
        return [root], problems
    found: dict[str, PluginSource] = {}
    for entry in sorted(path.iterdir()):
        if entry.name.startswith("."):
            continue
        source = None
        if entry.is_file() and entry.suffix == ".wasm":
            source = PluginSource(entry.stem, entry, _schema_for(entry))
        elif entry.is_dir() and entry.name not in _SKIP_DIRS:
            source = _source_root(entry)
        if source is None:
            continue
        if source.name in found:
            problems[source.name] = (
                f"{source.wasm} ignored: plugin name {source.name!r} is already "
                f"taken by {found[source.name].wasm}"
            )
            continue
        found[source.name] = source
    return sorted(found.values(), key=lambda s: s.name), problems
