"""``{{NAME}}`` and ``{{base64(USER:PASS)}}`` placeholders in manifest values."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

PLACEHOLDER = re.compile(
    r"\{\{\s*(?:base64\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)"
    r"|([A-Za-z_][A-Za-z0-9_]*))\s*\}\}"
)


def expand(text: str, lookup: Callable[[str], str]) -> str:
    """Replace every placeholder using ``lookup(name) -> value``."""

    def replace(m: re.Match[str]) -> str:
        user, password, name = m.groups()
        if name:
            return lookup(name)
        return base64.b64encode(f"{lookup(user)}:{lookup(password)}".encode()).decode()

    return PLACEHOLDER.sub(replace, text)
