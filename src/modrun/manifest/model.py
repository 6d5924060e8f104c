"""Manifest structure and loading, with errors that name file, path and reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modrun.errors import ConfigError
from modrun.manifest import jsonc

MANIFEST_NAMES = ("modrun.json", "hypermode.json")


class PluginEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: dict[str, str] = Field(default_factory=dict)

    @field_validator("config", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
        return value


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    plugins: dict[str, PluginEntry] = Field(default_factory=dict)

    @property
    def plugin_config(self) -> dict[str, dict[str, str]]:
        return {name: entry.config for name, entry in self.plugins.items()}


EMPTY = Manifest()


def find_manifest(app_dir: Path) -> Path | None:
    if not app_dir.is_dir():
        return None
    for name in MANIFEST_NAMES:
        if (app_dir / name).is_file():
            return app_dir / name
    return None


def _location(loc: tuple[Any, ...]) -> str:
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def load_manifest(path: Path) -> Manifest:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        doc = jsonc.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    try:
        return Manifest.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(f"{_location(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
