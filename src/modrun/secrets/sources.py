"""Where secret values come from, and in which order they are looked up.

For a placeholder ``{{NAME}}`` in connection (or plugin) ``SCOPE`` these
variable names are accepted, in this order (SCOPE and NAME upper-cased, ``-``
becoming ``_``):

1. ``MODRUN_<SCOPE>_<NAME>``
2. ``HYPERMODE_<SCOPE>_<NAME>`` (the seeds' convention)
3. ``HYP_MODEL_KEY_<MODEL>`` for ``{{API_KEY}}`` in the connection of model MODEL
4. ``OPENAI_API_KEY`` for ``{{API_KEY}}`` in a connection named ``openai``

They are searched for first in the process environment, then in the values
of ``--secretsFile`` (how a fleet node hands a bundle its deployment's secrets),
then in the app directory's ``.env.<ENVIRONMENT>.local``, ``.env.<ENVIRONMENT>``,
``.env.local`` and ``.env`` (earlier files win; ``ENVIRONMENT`` defaults to
``dev``), then in any extra source (AWS Secrets Manager with
``--useAwsSecrets``). The first source holding any accepted name wins, so a
variable set in the environment always beats the files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from dotenv import dotenv_values


def env_key(text: str) -> str:
    return text.upper().replace("-", "_").replace(".", "_")


def dotenv_files(app_dir: Path, environment: str) -> list[Path]:
    names = [f".env.{environment}.local", f".env.{environment}", ".env.local", ".env"]
    return [app_dir / name for name in names]


def load_dotenv_files(files: Iterable[Path]) -> dict[str, str]:
    """Merged values; earlier files win."""
    merged: dict[str, str] = {}
    for path in files:
        if path.is_file():
            for key, value in dotenv_values(path).items():
                if value is not None:
                    merged.setdefault(key, value)
    return merged


def load_secrets_file(path: Path) -> dict[str, str]:
    """``--secretsFile``: a JSON object of string values (ConfigError otherwise)."""
    from modrun.config.json_files import read_json_file
    from modrun.errors import ConfigError

    found = read_json_file(path, "--secretsFile")
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        raise ConfigError(f"--secretsFile {path}: expected an object of string values")
    return found


def candidate_names(scope: str, name: str, models: Sequence[str] = ()) -> list[str]:
    scope_key, name_key = env_key(scope), env_key(name)
    # MODUS_: a Modus project's own names (MODUS_<CONNECTION>_<NAME>, MODUS_APP_<NAME>)
    names = [
        f"MODRUN_{scope_key}_{name_key}",
        f"HYPERMODE_{scope_key}_{name_key}",
        f"MODUS_{scope_key}_{name_key}",
    ]
    if name_key == "API_KEY":
        names += [f"HYP_MODEL_KEY_{env_key(m)}" for m in models]
        if scope_key == "OPENAI":
            names.append("OPENAI_API_KEY")
    return names


class SecretSource:
    """Looks secrets up by the rules above."""

    def __init__(
        self,
        dotenv: Mapping[str, str],
        environ: Mapping[str, str] | None = None,
        extra: Sequence[Callable[[str, str, Sequence[str]], str | None]] = (),
    ) -> None:
        self.dotenv = dict(dotenv)
        self.environ = os.environ if environ is None else environ
        self.extra = list(extra)

    def lookup(self, scope: str, name: str, models: Sequence[str] = ()) -> tuple[str | None, list[str]]:
        """(value or None, the variable names tried)."""
        tried = candidate_names(scope, name, models)
        for variables in (self.environ, self.dotenv):
            for key in tried:
                value = variables.get(key)
                if value is not None:
                    return value, tried
        for source in self.extra:
            value = source(scope, name, models)
            if value is not None:
                return value, tried
        return None, tried
