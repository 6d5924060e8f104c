"""What an uploaded artifact must be before it is stored: a plugin is a wasm
module with an Extism plugin's exports; a bundle an archive with an app inside
(no traversal, links or bombs)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from modrun.control.errors import Unprocessable
from modrun.control.tenant_hosts import HostPattern
from modrun.control.tenant_policy import refuse_operator_features
from modrun.manifest.model import Manifest
from modrun.storage.bundles import BadBundle, read_bundle


def check(type_: str, path: Path, granted: Sequence[HostPattern] | None = None) -> None:
    """``granted`` None: the uploader may use what reaches the host (an admin);
    else the bundle's manifests are held to the tenant policy, their HTTP
    connections to the hosts ``granted``."""
    if type_ == "plugin":
        from modrun.plugins.wasmbin import read_without_custom_sections

        with open(path, "rb") as f:
            try:
                module = read_without_custom_sections(f)
            except ValueError as exc:
                message = (
                    "is not a WebAssembly module"
                    if "magic" in str(exc)
                    else f"is not valid WebAssembly: {exc}"
                )
                raise Unprocessable(f"the plugin {message}") from None
        _check_wasm(module, "the plugin")  # custom sections play no part in validity
    else:
        manifests = _check_bundle(path)
        if granted is not None:
            refuse_operator_features(manifests, granted)


def _check_wasm(data: bytes, what: str) -> None:
    from wasmtime import Engine, Module, WasmtimeError

    if data[:4] != b"\0asm":
        raise Unprocessable(f"{what} is not a WebAssembly module")
    try:
        Module.validate(Engine(), data)
    except WasmtimeError as exc:
        raise Unprocessable(f"{what} is not valid WebAssembly: {str(exc).splitlines()[0]}") from None


def bundle_manifests(path: Path, limit: int = 1 << 30) -> list[tuple[str, Manifest]]:
    """The bundle's manifests, parsed (an already checked bundle)."""
    return _check_bundle(path, limit)


def _check_bundle(path: Path, limit: int = 1 << 30) -> list[tuple[str, Manifest]]:
    try:
        files = read_bundle(path, limit)
    except BadBundle as exc:
        raise Unprocessable(str(exc)) from None
    if not any(name.endswith(".wasm") for name in files):
        raise Unprocessable("the bundle holds no .wasm plugin")
    for name, data in files.items():
        if name.endswith(".wasm"):
            _check_wasm(data, f"bundle entry {name!r}")
        if PurePosixPath(name).name.startswith(".env"):
            raise Unprocessable(f"bundle entry {name!r}: bundles carry no secrets (.env files)")
    found = []
    for name in (n for n in files if PurePosixPath(n).name == "modrun.json"):
        from modrun.errors import ConfigError
        from modrun.manifest.model import load_manifest

        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "modrun.json"
            target.write_bytes(files[name])
            try:
                found.append((name, load_manifest(target)))
            except ConfigError as exc:
                message = str(exc).replace(str(target), name)  # the temporary path means nothing to the user
                raise Unprocessable(f"bundle manifest {name}: {message}") from None
    return found
