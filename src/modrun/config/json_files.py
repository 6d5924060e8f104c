"""Reading a JSON file named by a flag, with errors that name the flag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modrun.errors import ConfigError


def read_json_file(path: Path, flag: str) -> Any:
    """The file's JSON; ConfigError naming ``flag`` when it cannot be read or parsed."""
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"{flag} {path}: not JSON") from None
